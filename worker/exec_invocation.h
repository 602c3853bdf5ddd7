// One request to an `exec` capability: a process per request, driven by the EventLoop with no
// thread of its own. The payload goes to the handler's stdin as the pipe takes it; its stdout
// goes up as chunks while the request has credit (no credit, no reading: the handler blocks on
// its full pipe, which is the backpressure); the tail of its stderr is kept for the error; its
// exit, seen through a pidfd (or, without one, looked for once its output has ended), decides
// the answer. When the handler exits, what it left behind
// in its process group is killed, so nothing it started can hold the request open.
//
// Loop thread only, from Begin to destruction.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "worker/capability_config.h"
#include "worker/event_loop.h"
#include "worker/invocation.h"
#include "worker/session_identity.h"

namespace gantry::worker {

struct ExecSettings {
  // False: find a handler's exit as on a kernel, or under a seccomp filter, without pidfd_open
  // (looked for once its output has ended, or it was killed). Tests set it to cover that path.
  bool use_pidfd = true;
  size_t max_chunk_bytes = 64 * 1024;
  std::string working_dir;
  SessionUser user = SessionUser::Unchanged();
};

class ExecInvocation final : public Invocation {
 public:
  // `ended` runs once, on the loop's thread, after the last output (or none, if cancelled);
  // the owner destroys the invocation later, never from inside it.
  ExecInvocation(EventLoop* loop, const Send* send, std::string id, const CapabilityConfig& capability,
                 const ExecSettings& settings, std::function<void()> ended);
  ~ExecInvocation() override;  // Kills and reaps a handler still running (shutdown).

  // Spawns the handler with `env`; a handler that cannot start is answered at once.
  void Begin(const std::vector<std::string>& env, std::string payload, ChunkCredit credit, absl::Time deadline);
  void AddCredit(int64_t chunks, int64_t bytes) override;
  void Cancel() override;

 private:
  enum class Stop { kNone, kCancelled, kLate };

  void OnStdin();
  // Reads stdout while there is credit; false if the kernel refused the watch.
  bool WatchStdout();
  void OnStdout();
  void OnStderr();
  void OnExit();
  // Looks for the exit from now on, until the handler is reaped: `exited` when it is known to
  // have exited (its pidfd said so), which bounds the wait for a status the supervisor's reaper
  // is handing over.
  void StartReaping(bool exited);
  void TryReap();
  void OnDeadline();
  // Stops the handler for `why`: killed, its pipes closed; the end comes once it is reaped.
  void StopHandler(Stop why);
  void CloseFd(int* fd);
  void MaybeEnd();

  EventLoop* const loop_;
  OutputSender out_;
  const CapabilityConfig& capability_;  // The runner's, which outlives every invocation.
  const ExecSettings& settings_;
  std::function<void()> ended_;

  pid_t pid_ = -1;
  int stdin_fd_ = -1, stdout_fd_ = -1, stderr_fd_ = -1, pidfd_ = -1;
  std::string payload_;
  size_t written_ = 0;
  ChunkCredit credit_;
  bool reading_stdout_ = false;  // Watched (there is credit); unwatched without any.
  std::string err_tail_;
  bool reaped_ = false;
  int wait_status_ = 0;
  bool reaping_ = false;
  bool exited_ = false;
  int reap_tries_ = 0;
  Stop stop_ = Stop::kNone;
  bool ended_called_ = false;
  EventLoop::TimerId deadline_timer_ = 0, reap_timer_ = 0;
};

}  // namespace gantry::worker
