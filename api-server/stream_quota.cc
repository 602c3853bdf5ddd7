#include "api-server/stream_quota.h"

#include "absl/strings/str_cat.h"
#include "common/metrics.h"

namespace gantry::api {

StreamQuota::Lease::~Lease() {
  if (quota_ != nullptr) quota_->Release(principal_);
}

absl::StatusOr<StreamQuota::Lease> StreamQuota::Acquire(const std::string& principal) {
  std::lock_guard<std::mutex> lock(mu_);
  int& open = open_[principal];
  if (open >= per_client_) {
    Metrics::Global().CounterAdd("gantry_streams_refused_total",
                                 "Streams refused because their client had too many open", {});
    return absl::ResourceExhaustedError(absl::StrCat(principal, " already has ", open, " ", what_,
                                                     " open; the limit per client is ", per_client_,
                                                     " (", flag_, "): close one first"));
  }
  ++open;
  return Lease(this, principal);
}

int StreamQuota::open(const std::string& principal) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = open_.find(principal);
  return it == open_.end() ? 0 : it->second;
}

void StreamQuota::Release(const std::string& principal) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = open_.find(principal);
  if (it != open_.end() && --it->second <= 0) open_.erase(it);
}

}  // namespace gantry::api
