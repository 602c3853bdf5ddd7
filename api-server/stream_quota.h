// Caps the streams of one kind (watches and logs; invokes) one client may hold open at once.
// Each open stream holds an HTTP/2 stream's buffers and its relay (20-50 KiB; no thread: the
// streams are reactors); one runaway script must not take them from everyone else. Keyed by principal ("user/alice"), so clients
// behind one address are counted apart and one client's many connections together.
//
// Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"

namespace gantry::api {

class StreamQuota {
 public:
  // An open stream; gives its place back when destroyed.
  class Lease {
   public:
    Lease(Lease&& other) noexcept : quota_(other.quota_), principal_(std::move(other.principal_)) {
      other.quota_ = nullptr;
    }
    Lease& operator=(Lease&&) = delete;
    ~Lease();

   private:
    friend class StreamQuota;
    Lease(StreamQuota* quota, std::string principal) : quota_(quota), principal_(std::move(principal)) {}
    StreamQuota* quota_;
    std::string principal_;
  };

  // `what` names the streams and the flag that sets the limit, for the refusal
  // ("WatchSession and StreamLogs streams", "--max-streams-per-client").
  StreamQuota(int per_client, std::string what, std::string flag)
      : per_client_(per_client), what_(std::move(what)), flag_(std::move(flag)) {}

  // A place for one more stream of `principal`, or RESOURCE_EXHAUSTED naming the limit.
  absl::StatusOr<Lease> Acquire(const std::string& principal) ABSL_LOCKS_EXCLUDED(mu_);

  int open(const std::string& principal) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Release(const std::string& principal) ABSL_LOCKS_EXCLUDED(mu_);

  const int per_client_;
  const std::string what_, flag_;
  std::mutex mu_;
  std::map<std::string, int> open_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gantry::api
