// Slows down the guessing of secrets (API keys, the join token). Each peer address may fail
// `burst` times, then once more per `interval`. While a peer has no attempt left, any secret it
// presents is refused with RESOURCE_EXHAUSTED before it is looked at: guessing goes no faster
// than the limit, costs no database lookup, and a right guess made meanwhile is not confirmed.
//
// Only failures count, so a client with the right key never notices. Callers authenticated by
// certificate never come here. Keyed by IP address, not port: a new connection does not reset
// it. A NAT that puts many clients behind one address shares one allowance; `burst` should
// cover their honest mistakes.
//
// Thread-safe; remembers at most kMaxPeers addresses (those that have recovered go first).
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace gantry::api {

class FailedAuthLimiter {
 public:
  struct Options {
    int burst = 10;
    absl::Duration interval = absl::Seconds(5);
  };
  static constexpr size_t kMaxPeers = 65536;

  explicit FailedAuthLimiter(Options options) : options_(options) {}

  // OK, or RESOURCE_EXHAUSTED saying when `peer` (a gRPC peer string) may try again.
  absl::Status Admit(std::string_view peer, absl::Time now = absl::Now()) ABSL_LOCKS_EXCLUDED(mu_);
  // Counts one refused secret from `peer`.
  void RecordFailure(std::string_view peer, absl::Time now = absl::Now()) ABSL_LOCKS_EXCLUDED(mu_);

  // Addresses it remembers now (for tests and metrics).
  size_t remembered() ABSL_LOCKS_EXCLUDED(mu_) {
    std::lock_guard<std::mutex> lock(mu_);
    return peers_.size();
  }

  // Admits `peer`, then runs `check` (which looks at the secret it presented) and counts an
  // UNAUTHENTICATED answer as a failure. Returns what `check` returned (a Status or StatusOr).
  template <typename Check>
  auto Guard(std::string_view peer, Check check) -> decltype(check()) {
    if (absl::Status s = Admit(peer); !s.ok()) return s;
    auto result = check();
    if (StatusOf(result).code() == absl::StatusCode::kUnauthenticated) RecordFailure(peer);
    return result;
  }

 private:
  static const absl::Status& StatusOf(const absl::Status& s) { return s; }
  template <typename T>
  static const absl::Status& StatusOf(const absl::StatusOr<T>& s) { return s.status(); }

  struct Allowance {
    double attempts = 0;  // Left as of `at`.
    absl::Time at;
  };
  double AttemptsLeft(const Allowance& a, absl::Time now) const;
  void ForgetRecovered(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  std::mutex mu_;
  std::unordered_map<std::string, Allowance> peers_ ABSL_GUARDED_BY(mu_);
};

// The caller's IP address from a gRPC peer string ("ipv4:10.0.0.7:4312", "ipv6:[fd00::7]:4312");
// empty for anything else.
std::string PeerIpAddress(std::string_view peer);

}  // namespace gantry::api
