// Removes an ended session's home (<session-dir>/<id>), then hands its uid back. The removal
// runs as the session's own uid: a symlink or a rename the tenant left behind then reaches
// nothing the tenant could not have deleted itself (root following it could delete anything).
// The uid is released only once the home is gone, so the next session given it finds nothing
// of the last one's. One thread, in order; the destructor finishes what is queued.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "worker/session_identity.h"

namespace gantry::worker {

class HomeCleaner {
 public:
  explicit HomeCleaner(SessionIdentities& identities);
  ~HomeCleaner();

  // Removes `home` as `user`, then releases `session_id`'s uid.
  void Clean(const std::string& session_id, const std::string& home, const SessionUser& user);
  // Queues every home under `session_dir` that an earlier run of the worker left behind: its
  // sessions died with that run (their keepers kill them), so at start-up none is live. Each is
  // removed as the uid that owns it, held meanwhile; a directory no session uid owns (nor
  // ".handlers") is left alone. Returns how many were queued.
  int SweepLeftovers(const std::string& session_dir);

 private:
  struct Job {
    std::string session_id, home;
    SessionUser user;
  };
  void Loop();
  void Remove(const Job& job);

  SessionIdentities& identities_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace gantry::worker
