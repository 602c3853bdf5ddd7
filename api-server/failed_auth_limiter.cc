#include "api-server/failed_auth_limiter.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/metrics.h"

namespace gantry::api {
namespace {

// A peer string that is not an IP address (a Unix socket) is limited as one peer.
std::string PeerKey(std::string_view peer) {
  std::string ip = PeerIpAddress(peer);
  return ip.empty() ? std::string(peer.substr(0, peer.find(':'))) : ip;
}

}  // namespace

std::string PeerIpAddress(std::string_view peer) {
  absl::string_view rest(peer.data(), peer.size());
  if (absl::ConsumePrefix(&rest, "ipv4:")) return std::string(rest.substr(0, rest.rfind(':')));
  if (absl::ConsumePrefix(&rest, "ipv6:[")) return std::string(rest.substr(0, rest.find(']')));
  return "";
}

double FailedAuthLimiter::AttemptsLeft(const Allowance& a, absl::Time now) const {
  double regained = std::max(0.0, absl::FDivDuration(now - a.at, options_.interval));
  return std::min<double>(options_.burst, a.attempts + regained);
}

absl::Status FailedAuthLimiter::Admit(std::string_view peer, absl::Time now) {
  const std::string key = PeerKey(peer);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(key);
  if (it == peers_.end()) return absl::OkStatus();
  const double left = AttemptsLeft(it->second, now);
  if (left >= 1) return absl::OkStatus();
  const int64_t wait_s = static_cast<int64_t>(
      std::ceil(absl::ToDoubleSeconds(options_.interval) * (1 - left)));
  Metrics::Global().CounterAdd("gantry_auth_throttled_total",
                               "Secrets refused unread because their peer failed too often", {});
  return absl::ResourceExhaustedError(absl::StrCat(
      "too many refused credentials from ", key, "; try again in ", std::max<int64_t>(wait_s, 1), " s"));
}

void FailedAuthLimiter::RecordFailure(std::string_view peer, absl::Time now) {
  const std::string key = PeerKey(peer);
  std::lock_guard<std::mutex> lock(mu_);
  if (peers_.size() >= kMaxPeers && peers_.find(key) == peers_.end()) ForgetRecovered(now);
  auto [it, added] = peers_.try_emplace(key, Allowance{static_cast<double>(options_.burst), now});
  Allowance& a = it->second;
  a.attempts = std::max(0.0, AttemptsLeft(a, now) - 1);
  a.at = now;
  if (a.attempts < 1) {
    spdlog::warn("{} has run out of credential attempts; refusing its secrets for a while", key);
  }
}

void FailedAuthLimiter::ForgetRecovered(absl::Time now) {
  for (auto it = peers_.begin(); it != peers_.end();) {
    it = AttemptsLeft(it->second, now) >= options_.burst ? peers_.erase(it) : std::next(it);
  }
  // Still full of peers that are all failing: forget the lot rather than grow without bound.
  if (peers_.size() >= kMaxPeers) peers_.clear();
}

}  // namespace gantry::api
