#include "worker/process_supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

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
    for (const auto& [session, running] : by_session_) kill(-running.pid, SIGKILL);
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

absl::StatusOr<pid_t> ProcessSupervisor::ForkExec(const SpawnSpec& spec) {
  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const char* workdir = spec.working_dir.empty() ? nullptr : spec.working_dir.c_str();

  int log_fd = open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) {
    return absl::InternalError(absl::StrCat("cannot open log ", spec.log_path, ": ", std::strerror(errno)));
  }
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int err_pipe[2];
  if (null_fd < 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(log_fd);
    if (null_fd >= 0) close(null_fd);
    return absl::InternalError(absl::StrCat("cannot create pipe: ", std::strerror(errno)));
  }
  sigset_t empty;
  sigemptyset(&empty);
  const pid_t parent = self_pid_;

  pid_t pid = fork();
  if (pid == 0) {
    // Child.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // The worker died between fork and prctl.
    sigprocmask(SIG_SETMASK, &empty, nullptr);  // The worker blocks SIGTERM; the session must not.
    dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    int err = 0;
    if (workdir != nullptr && chdir(workdir) != 0) {
      err = errno;
    } else {
      execvpe(argv[0], argv.data(), envp.data());
      err = errno;
    }
    ssize_t ignored = write(err_pipe[1], &err, sizeof(err));
    (void)ignored;
    _exit(127);
  }
  int fork_errno = errno;
  close(err_pipe[1]);
  close(log_fd);
  close(null_fd);
  if (pid < 0) {
    close(err_pipe[0]);
    return absl::ResourceExhaustedError(absl::StrCat("fork failed: ", std::strerror(fork_errno)));
  }
  // Also set the group from the parent side, so a kill(-pid) right after return cannot miss.
  setpgid(pid, pid);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++live_children_;
  }
  cv_.notify_all();  // Wakes the reaper if it was idle.

  // EOF (exec succeeded, the pipe closed on exec) or the child's errno.
  int child_errno = 0;
  ssize_t n;
  do {
    n = read(err_pipe[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  close(err_pipe[0]);

  std::lock_guard<std::mutex> lock(mu_);
  if (n == sizeof(child_errno)) {
    if (early_exits_.erase(pid) == 0) ignored_pids_.insert(pid);
    return absl::FailedPreconditionError(absl::StrCat(
        workdir != nullptr ? "cannot enter working_dir " : "cannot execute command[0] ",
        workdir != nullptr ? spec.working_dir : spec.argv[0], ": ", std::strerror(child_errno)));
  }
  by_session_[spec.session_id] = Running{pid, false, false};
  by_pid_[pid] = spec.session_id;
  if (auto it = early_exits_.find(pid); it != early_exits_.end()) {
    // Delivered by the killer thread: this thread must not call back into the worker while
    // the caller of Spawn is waiting for the pid.
    deferred_exits_.emplace_back(pid, it->second);
    early_exits_.erase(it);
    cv_.notify_all();
  }
  return pid;
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

void ProcessSupervisor::HandleExit(pid_t pid, int status) {
  // Whatever the session left in its group dies with it.
  kill(-pid, SIGKILL);
  ExitInfo info;
  info.pid = pid;
  if (WIFEXITED(status)) info.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) info.term_signal = WTERMSIG(status);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_pid_.find(pid);
    if (it == by_pid_.end()) return;
    info.session_id = it->second;
    by_pid_.erase(it);
    auto s = by_session_.find(info.session_id);
    if (s != by_session_.end()) {
      info.stop_requested = s->second.stop_requested;
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
  pid_t pid = it->second.pid;
  // A suspended group would never see SIGTERM: continue it first.
  if (it->second.suspended) kill(-pid, SIGCONT);
  kill(-pid, SIGTERM);
  kill_deadlines_.emplace(absl::Now() + grace, std::make_pair(session_id, pid));
  cv_.notify_all();
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
    auto [session_id, pid] = next->second;
    kill_deadlines_.erase(next);
    auto it = by_session_.find(session_id);
    if (it != by_session_.end() && it->second.pid == pid) kill(-pid, SIGKILL);
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
  for (const auto& [id, r] : by_session_) out.push_back({id, r.pid, r.suspended});
  return out;
}

bool ProcessSupervisor::Has(const std::string& session_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_session_.count(session_id) != 0;
}

}  // namespace gantry::worker
