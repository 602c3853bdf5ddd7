// Carries every session's stdout/stderr from a pipe into its SessionLog: one thread, epoll over
// all the pipes. A session writes into a pipe rather than straight into a file so that a full
// disk never turns into a write error inside the session, and so that recent output is in
// memory for tail and follow.
//
// Thread-safe.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "worker/session_log.h"

namespace gantry::worker {

class LogPump {
 public:
  // `ring_bytes`: memory kept per session; `max_file_bytes`: each session's cap on disk (0:
  // none; see SessionLog); `keep_finished`: how many ended sessions stay in memory (older
  // ones are read from their files).
  LogPump(size_t ring_bytes, int64_t max_file_bytes = 0, size_t keep_finished = 64);
  ~LogPump();

  LogPump(const LogPump&) = delete;
  LogPump& operator=(const LogPump&) = delete;

  // Creates the session's log at `path` and the pipe feeding it. Returns the pipe's write end
  // (close-on-exec) for the session's stdout and stderr; the caller closes it once the process
  // has it. The log is complete once every copy of the write end is closed.
  absl::StatusOr<int> Open(const std::string& session_id, const std::string& path);
  // The session's log while this worker holds it; null otherwise.
  std::shared_ptr<SessionLog> Find(const std::string& session_id) const;

 private:
  struct Source {
    std::string session_id;
    std::shared_ptr<SessionLog> log;
  };
  void Loop();
  // Reads what the pipe has; false at EOF.
  bool Drain(int fd, SessionLog& log);
  void Finish(int fd) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t ring_bytes_;
  const int64_t max_file_bytes_;
  const size_t keep_finished_;
  const int epoll_fd_;
  const int wake_fd_;
  mutable std::mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::map<int, Source> sources_ ABSL_GUARDED_BY(mu_);  // By pipe read end.
  std::map<std::string, std::shared_ptr<SessionLog>> logs_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> finished_ ABSL_GUARDED_BY(mu_);  // Oldest first.
  std::thread thread_;
};

}  // namespace gantry::worker
