// Which controllers serve a capability, asked of PostgreSQL at most once per `max_age` per
// capability: the order it gives (least busy first) comes from the controllers' heartbeats,
// which change no faster, so asking on every invoke only added a round trip (and a write, to
// spread invokes, which this replica now keeps in memory). Between two asks this replica
// spreads its own invokes: each one counts against its controller until the next ask, and
// among equals the one picked longest ago comes first. A controller that went away or was
// cordoned in the meantime refuses or fails the invoke before its first chunk, and the invoke
// moves on to its next candidate, as it would anyway.
//
// Bounded: only capabilities some controller serves are kept, at most kMaxCapabilities, and
// at most kMaxControllers controllers' last picks.
// Thread-safe; the fetch runs outside the lock.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "api-server/controller_store.h"

namespace gantry::api {

class InvokeCandidateCache {
 public:
  using Fetch = std::function<absl::StatusOr<std::vector<InvokeCandidateRow>>(const std::string& capability)>;
  using Clock = std::function<absl::Time()>;
  static constexpr size_t kMaxCapabilities = 1024;
  static constexpr size_t kMaxControllers = 100000;  // Remembered as picked, at most.

  InvokeCandidateCache(Fetch fetch, absl::Duration max_age, Clock now = [] { return absl::Now(); });

  // Controllers serving `capability` at a version `matches` accepts, best first, each once, at
  // most `limit`.
  absl::StatusOr<std::vector<ControllerTarget>> Candidates(const std::string& capability,
                                                           const std::function<bool(const std::string&)>& matches,
                                                           int limit);
  // As Candidates, if they are at hand (asked within max_age); nullopt where only PostgreSQL
  // could answer. Never waits: for a reaction, which must not.
  std::optional<std::vector<ControllerTarget>> CandidatesAtHand(const std::string& capability,
                                                                const std::function<bool(const std::string&)>& matches,
                                                                int limit);
  // An invoke of `capability` went to `controller_id`.
  void Picked(const std::string& capability, const std::string& controller_id);

 private:
  struct Entry {
    absl::Time fetched;
    std::vector<InvokeCandidateRow> rows;  // As PostgreSQL ordered them.
    std::map<std::string, int> picks;      // Since the fetch, by controller id.
  };

  std::vector<ControllerTarget> RankLocked(const Entry& entry, const std::function<bool(const std::string&)>& matches,
                                           int limit) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Fetch fetch_;
  const absl::Duration max_age_;
  const Clock now_;
  std::mutex mu_;
  std::map<std::string, Entry> by_capability_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> last_pick_ ABSL_GUARDED_BY(mu_);  // By controller id: a sequence number.
  uint64_t next_pick_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace gantry::api
