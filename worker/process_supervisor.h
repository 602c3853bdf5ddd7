// Runs session processes and watches them until they exit.
//
// Each session is its own process group with stdout/stderr going to a pipe or a log file.
// Each has a small keeper process between it and the worker (gantry-keeper, keeper_main.cc): if
// the worker dies, even by SIGKILL and even while the session is hibernated, the keeper kills the
// session's whole process group. Keepers are spawned from one long-lived spawner thread because
// the death signal fires when the *thread* that spawned exits. When a session's main process
// exits, the rest of its process group is killed too: no orphans.
//
// Thread-safe. Exit notifications arrive on the supervisor's reaper thread.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "worker/session_identity.h"

namespace gantry::worker {

struct SpawnSpec {
  std::string session_id;
  std::vector<std::string> argv;
  // Complete environment, "KEY=value" each; nothing is inherited from the worker.
  std::vector<std::string> env;
  std::string working_dir;
  // Where stdout and stderr go: `output_fd` when set (the caller keeps and closes it), else
  // appended to `log_path`.
  int output_fd = -1;
  std::string log_path;
  // The session's cgroup: the process is created inside it (clone3 with CLONE_INTO_CGROUP,
  // Linux 5.7+), or where that is refused writes itself into `cgroup_procs_fd` before exec.
  // Moving a process through cgroup.procs costs 10-15 ms (the kernel waits out an RCU grace
  // period): most of a session's start when it was the only way. -1 for none.
  int cgroup_dir_fd = -1;
  int cgroup_procs_fd = -1;
  // Who the process becomes before exec (session_identity.h). Either way it runs with
  // no_new_privs: nothing it executes gains privileges (setuid binaries, file capabilities).
  SessionUser user = SessionUser::Unchanged();
};

struct ExitInfo {
  std::string session_id;
  pid_t pid = 0;
  int exit_code = -1;    // Set when the process exited normally.
  int term_signal = 0;   // Set when a signal ended it.
  bool stop_requested = false;
};

struct ProcessInfo {
  std::string session_id;
  pid_t pid = 0;
  bool suspended = false;
};

// gantry-keeper in the directory of the running program (where the build and the images put it).
std::string DefaultKeeperPath();

class ProcessSupervisor {
 public:
  using ExitCallback = std::function<void(const ExitInfo&)>;

  // `keeper_path`: the gantry-keeper program (DefaultKeeperPath(): next to this one).
  ProcessSupervisor(ExitCallback on_exit, std::string keeper_path);
  ~ProcessSupervisor();  // Kills every remaining process group and joins the threads.

  ProcessSupervisor(const ProcessSupervisor&) = delete;
  ProcessSupervisor& operator=(const ProcessSupervisor&) = delete;

  // Starts the process; returns its pid (also its process group id) once exec has succeeded.
  // Callers on several threads overlap: each waits for its own exec. FAILED_PRECONDITION naming
  // command[0] if it cannot be executed (not found, not executable), ALREADY_EXISTS if the
  // session already has a process.
  absl::StatusOr<pid_t> Spawn(const SpawnSpec& spec);

  // SIGTERM to the group now, SIGKILL after `grace` if it is still alive. NOT_FOUND if the
  // session has no process.
  absl::Status Stop(const std::string& session_id, absl::Duration grace);

  // SIGSTOP / SIGCONT to the session's process group (hibernate / wake). NOT_FOUND if the
  // session has no process.
  absl::Status Suspend(const std::string& session_id);
  absl::Status Resume(const std::string& session_id);

  // Stops every session and waits (up to grace + 2 s) until all have exited.
  void StopAll(absl::Duration grace);

  std::vector<ProcessInfo> List() const;
  bool Has(const std::string& session_id) const;

 private:
  struct Running {
    pid_t keeper = 0;  // The direct child the reaper waits for.
    pid_t group = 0;   // The session process: its pid is its process group's id.
    bool stop_requested = false;
    bool suspended = false;
  };
  // A keeper started, and the read ends of its reports (keeper_protocol.h).
  struct Launched {
    pid_t keeper = 0;
    int pid_read = -1;
    int exec_read = -1;
  };
  struct SpawnJob {
    SpawnSpec spec;
    std::promise<absl::StatusOr<Launched>> result;
  };

  void SpawnerLoop();
  // On the spawner thread: posix_spawns the session's keeper.
  absl::StatusOr<Launched> LaunchKeeper(const SpawnSpec& spec);
  // On Spawn's caller's thread: waits for the keeper's reports and records the session.
  absl::StatusOr<pid_t> AwaitSession(const SpawnSpec& spec, const Launched& launched);
  void ReaperLoop();
  // Sends SIGKILL when a stop's grace period ends; delivers deferred exits.
  void KillerLoop();
  void HandleExit(pid_t pid, int status);

  ExitCallback on_exit_;
  const std::string keeper_path_;
  const pid_t self_pid_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Running> by_session_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> launching_ ABSL_GUARDED_BY(mu_);  // Spawns under way, by session.
  std::map<pid_t, std::string> by_pid_ ABSL_GUARDED_BY(mu_);
  // Exits the reaper saw before Spawn recorded the pid (a process that exits at once).
  std::map<pid_t, int> early_exits_ ABSL_GUARDED_BY(mu_);
  // Children whose exec failed: their exit is not a session's.
  std::set<pid_t> ignored_pids_ ABSL_GUARDED_BY(mu_);
  // Early exits of spawned sessions, delivered by the killer thread.
  std::deque<std::pair<pid_t, int>> deferred_exits_ ABSL_GUARDED_BY(mu_);
  int live_children_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<SpawnJob*> spawn_queue_ ABSL_GUARDED_BY(mu_);
  std::multimap<absl::Time, std::pair<std::string, pid_t>> kill_deadlines_ ABSL_GUARDED_BY(mu_);

  std::thread spawner_;
  std::thread reaper_;
  std::thread killer_;
};

}  // namespace gantry::worker
