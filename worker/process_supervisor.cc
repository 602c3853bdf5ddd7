#include "worker/process_supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>  // memfd_create
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <initializer_list>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "worker/handler_children.h"
#include "worker/keeper_protocol.h"

namespace gantry::worker {

ProcessSupervisor::ProcessSupervisor(ExitCallback on_exit, std::string keeper_path)
    : on_exit_(std::move(on_exit)), keeper_path_(std::move(keeper_path)), self_pid_(getpid()) {
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
    if (by_session_.count(spec.session_id) != 0 || !launching_.insert(spec.session_id).second) {
      return absl::AlreadyExistsError(
          absl::StrCat("session ", spec.session_id, " already has a process"));
    }
    spawn_queue_.push_back(&job);
  }
  cv_.notify_all();
  // The keeper is launched on the spawner thread; its reports are awaited here, so that other
  // sessions' keepers are launched while this one's command is still being exec'ed.
  absl::StatusOr<Launched> launched = future.get();
  absl::StatusOr<pid_t> started = launched.ok() ? AwaitSession(spec, *launched) : launched.status();
  std::lock_guard<std::mutex> lock(mu_);
  launching_.erase(spec.session_id);
  return started;
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
    job->result.set_value(LaunchKeeper(job->spec));
  }
}

namespace {

using keeper::ExecFailure;

// The keeper's death signal: not one a session would send to its own group.
int DeathSignal() { return SIGRTMIN + 7; }

// Descriptors handed to the keeper are first moved at or above this, clear of the fixed ones
// (keeper_protocol.h) they are placed at, so no placement overwrites one still to be placed.
constexpr int kAboveFixedFds = 10;

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

// Descriptors this start opened, closed when it returns.
class OwnedFds {
 public:
  ~OwnedFds() {
    for (int fd : fds_) close(fd);
  }
  int Add(int fd) {
    if (fd >= 0) fds_.push_back(fd);
    return fd;
  }
  // Closes the write ends at once: only the keeper and the session may hold them when the
  // reports are read, or no EOF comes.
  void CloseNow(std::initializer_list<int> fds) {
    for (int fd : fds) {
      auto it = std::find(fds_.begin(), fds_.end(), fd);
      if (fd < 0 || it == fds_.end()) continue;
      close(fd);
      fds_.erase(it);
    }
  }
  // No longer closed here: the caller owns it.
  int Release(int fd) {
    auto it = std::find(fds_.begin(), fds_.end(), fd);
    if (it != fds_.end()) fds_.erase(it);
    return fd;
  }
  // A copy of `fd` clear of the keeper's fixed descriptors (-1 stays -1).
  int CopyAboveFixed(int fd) {
    return fd < 0 ? -1 : Add(fcntl(fd, F_DUPFD_CLOEXEC, kAboveFixedFds));
  }

 private:
  std::vector<int> fds_;
};

// The keeper's spec (keeper_protocol.h) in a sealed memfd; -1 with errno on failure.
int WriteSpec(const SpawnSpec& spec) {
  std::string text = spec.working_dir;
  text.push_back('\0');
  for (const auto& a : spec.argv) {
    text += a;
    text.push_back('\0');
  }
  int fd = memfd_create("gantry-keeper-spec", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -1;
  size_t put = 0;
  while (put < text.size()) {
    ssize_t n = write(fd, text.data() + put, text.size() - put);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      close(fd);
      errno = err;
      return -1;
    }
    put += static_cast<size_t>(n);
  }
  fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
  return fd;
}

}  // namespace

std::string DefaultKeeperPath() {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return "gantry-keeper";
  std::string path(self, static_cast<size_t>(n));
  return path.substr(0, path.rfind('/') + 1) + "gantry-keeper";
}

// The keeper (keeper_main.cc) is posix_spawned: the worker's address space is not copied (a
// forked keeper shared the worker's pages, copy-on-write, for as long as its session ran), and
// the spawning thread waits only until the keeper has exec'ed. It is spawned from the spawner
// thread, whose exit fires the keeper's death signal.
absl::StatusOr<ProcessSupervisor::Launched> ProcessSupervisor::LaunchKeeper(const SpawnSpec& spec) {
  // keeper_protocol.h: SESSION_ID WORKER_PID DEATH_SIGNAL FLAGS UID GID GROUPS.
  std::vector<std::string> args = {keeper_path_, spec.session_id, absl::StrCat(self_pid_),
                                   absl::StrCat(DeathSignal()), "", "0", "0", ""};
  if (spec.cgroup_dir_fd >= 0) args[4] += 'c';
  if (spec.cgroup_procs_fd >= 0) args[4] += 'p';
  if (spec.user.drop) {
    args[4] += 'u';
    args[5] = absl::StrCat(spec.user.uid);
    args[6] = absl::StrCat(spec.user.gid);
    args[7] = absl::StrJoin(spec.user.groups, ",");
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;  // The keeper's environment is the session's.
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  OwnedFds fds;
  const int log_fd =
      spec.output_fd >= 0
          ? fds.CopyAboveFixed(spec.output_fd)
          : fds.CopyAboveFixed(fds.Add(
                open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)));
  if (log_fd < 0) {
    return absl::InternalError(
        absl::StrCat("cannot open log ", spec.log_path, ": ", std::strerror(errno)));
  }
  const int null_fd = fds.CopyAboveFixed(fds.Add(open("/dev/null", O_RDONLY | O_CLOEXEC)));
  const int spec_fd = fds.CopyAboveFixed(fds.Add(WriteSpec(spec)));
  if (spec_fd < 0) {
    return absl::InternalError(
        absl::StrCat("cannot hand the command to the keeper: ", std::strerror(errno)));
  }
  const int cgroup_dir_fd = fds.CopyAboveFixed(spec.cgroup_dir_fd);
  const int cgroup_procs_fd = fds.CopyAboveFixed(spec.cgroup_procs_fd);
  // The keeper reports the session's pid on one pipe; the session reports errno on the other
  // if exec fails. EOF on the second means the command is running.
  int pid_report[2] = {-1, -1};
  int exec_report[2] = {-1, -1};
  const bool piped = pipe2(pid_report, O_CLOEXEC) == 0 && pipe2(exec_report, O_CLOEXEC) == 0;
  const int pid_read = fds.Add(pid_report[0]), exec_read = fds.Add(exec_report[0]);
  const int pid_write = fds.CopyAboveFixed(fds.Add(pid_report[1]));
  const int exec_write = fds.CopyAboveFixed(fds.Add(exec_report[1]));
  if (null_fd < 0 || !piped || pid_write < 0 || exec_write < 0 ||
      (spec.cgroup_dir_fd >= 0 && cgroup_dir_fd < 0) ||
      (spec.cgroup_procs_fd >= 0 && cgroup_procs_fd < 0)) {
    return absl::InternalError(
        absl::StrCat("cannot create the keeper's pipes: ", std::strerror(errno)));
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, null_fd, 0);
  posix_spawn_file_actions_adddup2(&actions, log_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, log_fd, 2);
  posix_spawn_file_actions_adddup2(&actions, pid_write, keeper::kPidReportFd);
  posix_spawn_file_actions_adddup2(&actions, exec_write, keeper::kExecReportFd);
  posix_spawn_file_actions_adddup2(&actions, spec_fd, keeper::kSpecFd);
  if (cgroup_dir_fd >= 0)
    posix_spawn_file_actions_adddup2(&actions, cgroup_dir_fd, keeper::kCgroupDirFd);
  if (cgroup_procs_fd >= 0)
    posix_spawn_file_actions_adddup2(&actions, cgroup_procs_fd, keeper::kCgroupProcsFd);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);  // Its own group, before it runs.
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t keeper = 0;
  const int spawn_error =
      posix_spawn(&keeper, keeper_path_.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  fds.CloseNow({pid_write, exec_write, pid_report[1], exec_report[1]});
  if (spawn_error != 0) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "cannot start the session's keeper ", keeper_path_, ": ", std::strerror(spawn_error)));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++live_children_;
  }
  cv_.notify_all();  // Wakes the reaper if it was idle.
  return Launched{keeper, fds.Release(pid_read), fds.Release(exec_read)};
}

absl::StatusOr<pid_t> ProcessSupervisor::AwaitSession(const SpawnSpec& spec,
                                                      const Launched& launched) {
  const pid_t keeper = launched.keeper;
  pid_t session = 0;
  ExecFailure failure = {};
  bool got_pid =
      ReadUpTo(launched.pid_read, &session, sizeof(session)) == sizeof(session) && session > 0;
  bool exec_failed = ReadUpTo(launched.exec_read, &failure, sizeof(failure)) == sizeof(failure);
  close(launched.pid_read);
  close(launched.exec_read);

  std::lock_guard<std::mutex> lock(mu_);
  if (!got_pid || exec_failed) {
    // The keeper exits on its own; its exit is not a session's.
    if (early_exits_.erase(keeper) == 0) ignored_pids_.insert(keeper);
    if (!got_pid)
      return absl::ResourceExhaustedError("could not start the session's keeper process");
    switch (failure.stage) {
      case ExecFailure::kCgroup:
        return absl::InternalError(
            absl::StrCat("cannot join the session's cgroup: ", std::strerror(failure.err)));
      case ExecFailure::kIdentity:
        return absl::InternalError(absl::StrCat(
            "cannot become uid ", spec.user.uid, " gid ", spec.user.gid,
            " (the worker needs CAP_SETUID and CAP_SETGID): ", std::strerror(failure.err)));
      case ExecFailure::kChdir:
        return absl::FailedPreconditionError(absl::StrCat(
            "cannot enter working_dir ", spec.working_dir, ": ", std::strerror(failure.err)));
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
