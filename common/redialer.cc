#include "common/redialer.h"

#include <utility>

#include "common/tls.h"

namespace gantry {

Redialer::Redialer(const std::string& addresses, Credentials credentials, Policy policy)
    : addresses_(SplitAddressList(addresses)),
      credentials_(std::move(credentials)),
      backoff_(policy.initial_backoff, policy.max_backoff) {}

Redialer::Redialer(const std::string& addresses, std::shared_ptr<grpc::ChannelCredentials> credentials, Policy policy)
    : Redialer(addresses, Credentials([credentials] { return credentials; }), policy) {}

std::shared_ptr<grpc::Channel> Redialer::Channel() {
  std::lock_guard<std::mutex> lock(mu_);
  if (channel_ == nullptr) DialLocked();
  return channel_;
}

void Redialer::DialLocked() {
  if (addresses_.empty()) return;
  std::shared_ptr<grpc::ChannelCredentials> credentials = credentials_();
  if (credentials == nullptr) return;
  current_ = next_;
  next_ = (next_ + 1) % addresses_.size();
  // Connections of its own: a fresh channel must not share a stuck one's.
  channel_ = CreateInternalChannel(addresses_[current_], std::move(credentials), /*own_subchannels=*/true);
}

std::string Redialer::address() const {
  std::lock_guard<std::mutex> lock(mu_);
  return addresses_.empty() ? "" : addresses_[current_];
}

bool Redialer::Failed(const grpc::Status& status) {
  if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return false;
  Redial();
  return true;
}

void Redialer::Redial() {
  std::lock_guard<std::mutex> lock(mu_);
  channel_ = nullptr;
}

absl::Duration Redialer::Backoff() {
  std::lock_guard<std::mutex> lock(mu_);
  return backoff_.Next();
}

void Redialer::Recovered() {
  std::lock_guard<std::mutex> lock(mu_);
  backoff_.Reset();
}

}  // namespace gantry
