#include "worker/process_supervisor.h"

#include <fcntl.h>
#include <grp.h>  // setgroups
#include <linux/sched.h>  // struct clone_args, CLONE_INTO_CGROUP
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "worker/handler_children.h"

namespace gantry::worker {

ProcessSupervisor::ProcessSupervisor(ExitCallback on_exit)
    : on_exit_(std::move(on_exit)), self_pid_(getpid()) {
  spawner_ = std::thread([this] { SpawnerLoop(); });
  reaper_ = std::thread([this] { ReaperLoop(); });
  killer_ = std::thread([this] { KillerLoop(); });
}

ProcessSupervisor::~ProcessSupervisor() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [session, running] : by_session_) {
      kill(-running.group, SIGKILL);
      kill(running.keeper, SIGKILL);
    }
  }
  // Give the reaper a moment to collect what we just killed.
  for (int i = 0; i < 200; ++i) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (live_children_ == 0) break;
    }
    usleep(10 * 1000);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  spawner_.join();
  killer_.join();
  // The reaper may be blocked in waitpid on a child that refuses to die; it is detached by
  // then only if something outlived SIGKILL (a process in uninterruptible sleep).
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (live_children_ > 0) {
      reaper_.detach();
      return;
    }
  }
  reaper_.join();
}

absl::StatusOr<pid_t> ProcessSupervisor::Spawn(const SpawnSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty()) {
    return absl::InvalidArgumentError("command: empty");
  }
  SpawnJob job{spec, {}};
  auto future = job.result.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return absl::UnavailableError("worker is shutting down");
    if (by_session_.count(spec.session_id) != 0) {
      return absl::AlreadyExistsError(absl::StrCat("session ", spec.session_id, " already has a process"));
    }
    spawn_queue_.push_back(&job);
  }
  cv_.notify_all();
  return future.get();
}

void ProcessSupervisor::SpawnerLoop() {
  while (true) {
    SpawnJob* job = nullptr;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !spawn_queue_.empty(); });
      if (spawn_queue_.empty()) return;  // stopping
      job = spawn_queue_.front();
      spawn_queue_.pop_front();
    }
    job->result.set_value(ForkExec(job->spec));
  }
}

namespace {

// The keeper's process group to kill when the worker dies; set in the keeper only.
volatile pid_t g_keeper_target_group = 0;

// Runs in the keeper when the worker dies (PR_SET_PDEATHSIG). kill() is async-signal-safe, and
// SIGKILL reaches the session's processes even while they are stopped (hibernated).
void KillSessionGroup(int) {
  if (g_keeper_target_group > 0) kill(-g_keeper_target_group, SIGKILL);
  _exit(137);
}

// What a session process reports when it cannot become its command.
struct ExecFailure {
  enum Stage : int { kCgroup, kIdentity, kChdir, kExec } stage;
  int err;
};

bool WriteAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

size_t ReadUpTo(int fd, void* data, size_t size) {
  char* p = static_cast<char*>(data);
  size_t got = 0;
  while (got < size) {
    ssize_t n = read(fd, p + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  return got;
}

}  // namespace

// Process tree of one session:
//
//   worker ── keeper (own process group; PDEATHSIG -> kill the session group)
//                └── session process (leader of the session's process group) ── its children
//
// The keeper is a plain fork of the worker that only waits: it exists because the death signal
// reaches one direct child, and a process that receives it while stopped cannot act. The keeper
// is never in the session's group, so hibernation (SIGSTOP to the group) never stops it, and a
// worker killed with SIGKILL still takes every session process with it. The keeper exits with
// the session process's status (re-raising its signal), which is what the reaper sees.
absl::StatusOr<pid_t> ProcessSupervisor::ForkExec(const SpawnSpec& spec) {
  // Everything the children need is prepared before fork: after it, only async-signal-safe calls.
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const char* workdir = spec.working_dir.empty() ? nullptr : spec.working_dir.c_str();
  const int death_signal = SIGRTMIN + 7;  // Not one a session would send to its own group.
  const SessionUser& user = spec.user;

  int log_fd = spec.output_fd >= 0
                   ? fcntl(spec.output_fd, F_DUPFD_CLOEXEC, 3)
                   : open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) {
    return absl::InternalError(absl::StrCat("cannot open log ", spec.log_path, ": ", std::strerror(errno)));
  }
  const int cgroup_fd = spec.cgroup_procs_fd;
  const int cgroup_dir_fd = spec.cgroup_dir_fd;
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  // The keeper reports the session's pid on one pipe; the session reports errno on the other
  // if exec fails. Both close on exec/exit, so EOF on the second means the command is running.
  int pid_report[2] = {-1, -1};
  int exec_report[2] = {-1, -1};
  if (null_fd < 0 || pipe2(pid_report, O_CLOEXEC) != 0 || pipe2(exec_report, O_CLOEXEC) != 0) {
    int err = errno;
    for (int fd : {log_fd, null_fd, pid_report[0], pid_report[1], exec_report[0], exec_report[1]}) {
      if (fd >= 0) close(fd);
    }
    return absl::InternalError(absl::StrCat("cannot create pipe: ", std::strerror(err)));
  }
  sigset_t empty;
  sigemptyset(&empty);
  const pid_t worker = self_pid_;

  pid_t keeper = fork();
  if (keeper == 0) {
    setpgid(0, 0);
    struct sigaction on_death = {};
    on_death.sa_handler = KillSessionGroup;
    sigaction(death_signal, &on_death, nullptr);
    prctl(PR_SET_PDEATHSIG, death_signal);
    if (getppid() != worker) _exit(127);  // The worker died before prctl took effect.
    const pid_t self = getpid();
    pid_t session = -1;
    bool born_in_cgroup = false;
    if (cgroup_dir_fd >= 0) {
      struct clone_args args = {};
      args.flags = CLONE_INTO_CGROUP;
      args.exit_signal = SIGCHLD;
      args.cgroup = static_cast<uint64_t>(cgroup_dir_fd);
      session = static_cast<pid_t>(syscall(SYS_clone3, &args, sizeof(args)));
      born_in_cgroup = session >= 0;
    }
    if (!born_in_cgroup) session = fork();  // Older kernels: the child joins through cgroup.procs.
    if (session == 0) {
      setpgid(0, 0);
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // If the keeper dies, so does the session.
      if (getppid() != self) _exit(127);
      sigprocmask(SIG_SETMASK, &empty, nullptr);  // The worker blocks SIGTERM; sessions must not.
      dup2(null_fd, 0);
      dup2(log_fd, 1);
      dup2(log_fd, 2);
      // Nothing of the worker's (sockets, files opened without O_CLOEXEC) reaches the session.
      close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
      // Joins its cgroup before exec, so that everything it starts is inside too.
      ExecFailure failure = {ExecFailure::kCgroup, 0};
      if (!born_in_cgroup && cgroup_fd >= 0 && write(cgroup_fd, "0", 1) != 1) {
        failure.err = errno;
      } else if (user.drop && (setgroups(user.groups.size(), user.groups.data()) != 0 ||
                               setresgid(user.gid, user.gid, user.gid) != 0 ||
                               setresuid(user.uid, user.uid, user.uid) != 0)) {
        // Groups first, then the gid, then the uid: after setresuid there is no way back.
        failure = {ExecFailure::kIdentity, errno};
      } else if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        failure = {ExecFailure::kIdentity, errno};
      } else if (workdir != nullptr && chdir(workdir) != 0) {
        failure = {ExecFailure::kChdir, errno};
      } else {
        execvpe(argv[0], argv.data(), envp.data());
        failure = {ExecFailure::kExec, errno};
      }
      WriteAll(exec_report[1], &failure, sizeof(failure));
      _exit(127);
    }
    if (session < 0) _exit(126);
    setpgid(session, session);  // Also from here, so the group exists before anyone signals it.
    g_keeper_target_group = session;
    WriteAll(pid_report[1], &session, sizeof(session));
    // The keeper holds nothing of the worker's: no sockets kept open behind its back.
    close_range(3, ~0U, 0);
    int status = 0;
    while (waitpid(session, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(status)) {
      int sig = WTERMSIG(status);
      struct sigaction dfl = {};
      dfl.sa_handler = SIG_DFL;
      sigaction(sig, &dfl, nullptr);
      sigset_t only;
      sigemptyset(&only);
      sigaddset(&only, sig);
      sigprocmask(SIG_UNBLOCK, &only, nullptr);
      prctl(PR_SET_DUMPABLE, 0);  // Re-raising SIGSEGV and friends should not dump the keeper.
      kill(getpid(), sig);
    }
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128);
  }
  int fork_errno = errno;
  close(pid_report[1]);
  close(exec_report[1]);
  close(log_fd);
  close(null_fd);
  if (keeper < 0) {
    close(pid_report[0]);
    close(exec_report[0]);
    return absl::ResourceExhaustedError(absl::StrCat("fork failed: ", std::strerror(fork_errno)));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++live_children_;
  }
  cv_.notify_all();  // Wakes the reaper if it was idle.

  pid_t session = 0;
  ExecFailure failure = {};
  bool got_pid = ReadUpTo(pid_report[0], &session, sizeof(session)) == sizeof(session) && session > 0;
  bool exec_failed = ReadUpTo(exec_report[0], &failure, sizeof(failure)) == sizeof(failure);
  close(pid_report[0]);
  close(exec_report[0]);

  std::lock_guard<std::mutex> lock(mu_);
  if (!got_pid || exec_failed) {
    // The keeper exits on its own; its exit is not a session's.
    if (early_exits_.erase(keeper) == 0) ignored_pids_.insert(keeper);
    if (!got_pid) return absl::ResourceExhaustedError("could not start the session's keeper process");
    switch (failure.stage) {
      case ExecFailure::kCgroup:
        return absl::InternalError(
            absl::StrCat("cannot join the session's cgroup: ", std::strerror(failure.err)));
      case ExecFailure::kIdentity:
        return absl::InternalError(absl::StrCat("cannot become uid ", user.uid, " gid ", user.gid,
                                                " (the worker needs CAP_SETUID and CAP_SETGID): ",
                                                std::strerror(failure.err)));
      case ExecFailure::kChdir:
        return absl::FailedPreconditionError(
            absl::StrCat("cannot enter working_dir ", spec.working_dir, ": ", std::strerror(failure.err)));
      case ExecFailure::kExec:
        break;
    }
    return absl::FailedPreconditionError(
        absl::StrCat("cannot execute command[0] ", spec.argv[0], ": ", std::strerror(failure.err)));
  }
  by_session_[spec.session_id] = Running{keeper, session, false, false};
  by_pid_[keeper] = spec.session_id;
  if (auto it = early_exits_.find(keeper); it != early_exits_.end()) {
    // Delivered by the killer thread: this thread must not call back into the worker while
    // the caller of Spawn is waiting for the pid.
    deferred_exits_.emplace_back(keeper, it->second);
    early_exits_.erase(it);
    cv_.notify_all();
  }
  return session;
}

void ProcessSupervisor::ReaperLoop() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || live_children_ > 0; });
      if (stopping_ && live_children_ == 0) return;
    }
    int status = 0;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == ECHILD) {
        std::lock_guard<std::mutex> lock(mu_);
        live_children_ = 0;
      }
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      // A capability handler's exit is not one of ours (nor counted in live_children_).
      if (by_pid_.count(pid) == 0 && handler_children::OfferExit(pid, status)) continue;
      --live_children_;
      if (ignored_pids_.erase(pid) != 0) continue;
      if (by_pid_.count(pid) == 0) {
        early_exits_[pid] = status;
        continue;
      }
    }
    HandleExit(pid, status);
  }
}

void ProcessSupervisor::HandleExit(pid_t keeper, int status) {
  ExitInfo info;
  if (WIFEXITED(status)) info.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) info.term_signal = WTERMSIG(status);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_pid_.find(keeper);
    if (it == by_pid_.end()) return;
    info.session_id = it->second;
    by_pid_.erase(it);
    auto s = by_session_.find(info.session_id);
    if (s != by_session_.end()) {
      info.stop_requested = s->second.stop_requested;
      info.pid = s->second.group;
      // Whatever the session left in its group dies with it.
      kill(-s->second.group, SIGKILL);
      by_session_.erase(s);
    }
  }
  cv_.notify_all();
  if (on_exit_) on_exit_(info);
}

absl::Status ProcessSupervisor::Stop(const std::string& session_id, absl::Duration grace) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_session_.find(session_id);
  if (it == by_session_.end()) {
    return absl::NotFoundError(absl::StrCat("session ", session_id, " has no process"));
  }
  it->second.stop_requested = true;
  pid_t group = it->second.group;
  kill(-group, SIGTERM);
  // A stopped (hibernated) group holds SIGTERM pending until it is continued.
  if (it->second.suspended) kill(-group, SIGCONT);
  kill_deadlines_.emplace(absl::Now() + grace, std::make_pair(session_id, group));
  cv_.notify_all();
  return absl::OkStatus();
}

absl::Status ProcessSupervisor::Suspend(const std::string& session_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_session_.find(session_id);
  if (it == by_session_.end()) {
    return absl::NotFoundError(absl::StrCat("session ", session_id, " has no process"));
  }
  if (kill(-it->second.group, SIGSTOP) != 0) {
    return absl::InternalError(absl::StrCat("SIGSTOP: ", std::strerror(errno)));
  }
  it->second.suspended = true;
  return absl::OkStatus();
}

absl::Status ProcessSupervisor::Resume(const std::string& session_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_session_.find(session_id);
  if (it == by_session_.end()) {
    return absl::NotFoundError(absl::StrCat("session ", session_id, " has no process"));
  }
  if (kill(-it->second.group, SIGCONT) != 0) {
    return absl::InternalError(absl::StrCat("SIGCONT: ", std::strerror(errno)));
  }
  it->second.suspended = false;
  return absl::OkStatus();
}

void ProcessSupervisor::KillerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (!deferred_exits_.empty()) {
      auto [pid, status] = deferred_exits_.front();
      deferred_exits_.pop_front();
      lock.unlock();
      HandleExit(pid, status);
      lock.lock();
      continue;
    }
    if (kill_deadlines_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto next = kill_deadlines_.begin();
    absl::Time now = absl::Now();
    if (next->first > now) {
      cv_.wait_for(lock, absl::ToChronoMilliseconds(next->first - now + absl::Milliseconds(1)));
      continue;
    }
    auto [session_id, group] = next->second;
    kill_deadlines_.erase(next);
    auto it = by_session_.find(session_id);
    if (it != by_session_.end() && it->second.group == group) kill(-group, SIGKILL);
  }
}

void ProcessSupervisor::StopAll(absl::Duration grace) {
  std::vector<std::string> sessions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, r] : by_session_) sessions.push_back(id);
  }
  for (const auto& id : sessions) (void)Stop(id, grace);
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, absl::ToChronoMilliseconds(grace + absl::Seconds(2)),
               [&] { return by_session_.empty(); });
}

std::vector<ProcessInfo> ProcessSupervisor::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ProcessInfo> out;
  for (const auto& [id, r] : by_session_) out.push_back({id, r.group, r.suspended});
  return out;
}

bool ProcessSupervisor::Has(const std::string& session_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_session_.count(session_id) != 0;
}

}  // namespace gantry::worker
