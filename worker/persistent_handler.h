// One long-lived handler process for a `persistent` capability, serving many requests at once
// over the framed protocol of docs/invoke-protocol.md:
//
//   to the handler:    REQ <id> <length>\n<payload>      CANCEL <id>\n
//                      PAUSE <id>\n   RESUME <id>\n      (only to a handler that said HELLO pause)
//   from the handler:  CHUNK <id> <length>\n<bytes>      END <id>\n      ERROR <id> <length>\n<message>
//                      HELLO <feature>...\n
//
// Started on the first request; restarted on the next request after it exits. A handler that
// exits, or writes anything that is not a frame, fails every request in flight (it is killed
// in the second case) and the worker carries on.
//
// Thread-safe. Frames reach each request's sink on the reader thread.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "worker/capability_config.h"
#include "worker/handler_frames.h"
#include "worker/session_identity.h"

namespace gantry::worker {

class PersistentHandler {
 public:
  using Sink = std::function<void(HandlerFrame)>;

  PersistentHandler(CapabilityConfig capability, std::vector<std::string> env, std::string working_dir,
                    SessionUser user);
  ~PersistentHandler();  // Stop(), then waits for its threads.

  // Kills the process and starts no other: a write to it blocked on a full pipe fails.
  void Stop();

  // Sends the request; `sink` receives its frames until kEnd or kError.
  absl::Status Submit(const std::string& id, const std::string& payload, Sink sink);
  // Sends CANCEL and forgets the request: no more frames reach its sink.
  void Cancel(const std::string& id);
  // Asks the handler to stop (or go on) writing the request's output: PAUSE or RESUME, if the
  // process running now said `HELLO pause` and the request is still in flight. Otherwise
  // nothing: a handler that does not pause is cut off by its invocation's bounds instead.
  // True if the frame was written.
  bool Pause(const std::string& id, bool pause);
  pid_t pid() const;

 private:
  // Starts the process unless it runs; `lock` holds mu_ (released while it starts).
  absl::Status EnsureRunning(std::unique_lock<std::mutex>& lock);
  // Spawns the process, reports the result, then reads its frames until it goes.
  void Serve(uint64_t generation, std::shared_ptr<std::promise<absl::Status>> started);
  // Writes one whole frame to the process of `generation`; false if it is gone or not reading.
  bool WriteFrame(uint64_t generation, const std::string& frame);
  // Fails every request in flight and forgets the process.
  void Lost(uint64_t generation, const std::string& why);

  const CapabilityConfig capability_;
  const std::vector<std::string> env_;
  const std::string working_dir_;
  const SessionUser user_;
  // Held while writing to the handler (before mu_, never after): a handler slow to read its
  // requests must not stop its output from being read.
  std::mutex write_mu_;
  mutable std::mutex mu_;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  pid_t pid_ ABSL_GUARDED_BY(mu_) = -1;
  int stdin_fd_ ABSL_GUARDED_BY(mu_) = -1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool starting_ ABSL_GUARDED_BY(mu_) = false;
  std::condition_variable started_cv_;
  std::map<std::string, Sink> sinks_ ABSL_GUARDED_BY(mu_);
  bool pauses_ ABSL_GUARDED_BY(mu_) = false;  // The process running now said HELLO pause.
  std::string last_end_ ABSL_GUARDED_BY(mu_);  // How the last process ended.
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);  // One per generation.
};

}  // namespace gantry::worker
