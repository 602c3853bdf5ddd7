// Starting capability handler processes. Each runs in its own process group, dies with the
// thread that started it (PDEATHSIG), and sees only a minimal environment. They are reaped with
// ReapHandler, which also finds exits the session supervisor's reaper took (handler_children.h).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/session_identity.h"

namespace gantry::worker {

struct HandlerProcess {
  pid_t pid = -1;    // Also its process group.
  int stdin_fd = -1;   // Write end, close-on-exec.
  int stdout_fd = -1;  // Read end, non-blocking, close-on-exec.
  int stderr_fd = -1;  // Read end, non-blocking, close-on-exec; -1 if stderr is inherited.
};

// `env` complete ("KEY=value"); `capture_stderr` false leaves the worker's stderr. The handler
// becomes `user` before exec, and runs with no_new_privs either way.
absl::StatusOr<HandlerProcess> SpawnHandler(const std::vector<std::string>& argv,
                                            const std::vector<std::string>& env,
                                            const std::string& working_dir, bool capture_stderr,
                                            const SessionUser& user);

// SIGKILL to the handler's process group.
void KillHandler(pid_t pid);

// Reaps the handler if it has exited (or waits when `block`): true when reaped, with the raw
// wait status in `status`.
bool ReapHandler(pid_t pid, bool block, int* status);

}  // namespace gantry::worker
