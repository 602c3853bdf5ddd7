#include "worker/handler_process.h"

#include <fcntl.h>
#include <grp.h>  // setgroups
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "worker/handler_children.h"

namespace gantry::worker {
namespace {

void CloseAll(std::initializer_list<int> fds) {
  for (int fd : fds) {
    if (fd >= 0) close(fd);
  }
}

}  // namespace

absl::StatusOr<HandlerProcess> SpawnHandler(const std::vector<std::string>& argv,
                                            const std::vector<std::string>& env,
                                            const std::string& working_dir, bool capture_stderr,
                                            const SessionUser& user) {
  if (argv.empty()) return absl::InvalidArgumentError("handler command is empty");
  std::vector<char*> c_argv, c_env;
  for (const auto& a : argv) c_argv.push_back(const_cast<char*>(a.c_str()));
  c_argv.push_back(nullptr);
  for (const auto& e : env) c_env.push_back(const_cast<char*>(e.c_str()));
  c_env.push_back(nullptr);
  const char* dir = working_dir.empty() ? nullptr : working_dir.c_str();

  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, exec_report[2] = {-1, -1};
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(exec_report, O_CLOEXEC) != 0 ||
      (capture_stderr && pipe2(err, O_CLOEXEC) != 0)) {
    int e = errno;
    CloseAll({in[0], in[1], out[0], out[1], err[0], err[1], exec_report[0], exec_report[1]});
    return absl::ResourceExhaustedError(absl::StrCat("cannot create pipes: ", std::strerror(e)));
  }
  sigset_t empty;
  sigemptyset(&empty);
  const pid_t parent = getpid();
  std::unique_lock<std::mutex> spawning(handler_children::SpawnMutex());
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    sigprocmask(SIG_SETMASK, &empty, nullptr);
    dup2(in[0], 0);
    dup2(out[1], 1);
    if (err[1] >= 0) dup2(err[1], 2);
    int e = 0;
    // Groups first, then the gid, then the uid: after setresuid there is no way back.
    if (user.drop && (setgroups(user.groups.size(), user.groups.data()) != 0 ||
                      setresgid(user.gid, user.gid, user.gid) != 0 || setresuid(user.uid, user.uid, user.uid) != 0)) {
      e = errno;
    } else if (user.drop && (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)) {
      // A change of credentials clears the death signal: set again, for the new user.
      _exit(127);
    } else if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
      e = errno;
    } else if (dir != nullptr && chdir(dir) != 0) {
      e = errno;
    } else {
      execvpe(c_argv[0], c_argv.data(), c_env.data());
      e = errno;
    }
    if (write(exec_report[1], &e, sizeof(e)) < 0) _exit(127);
    _exit(127);
  }
  int spawn_errno = errno;
  if (pid > 0) handler_children::Register(pid);
  spawning.unlock();
  CloseAll({in[0], out[1], err[1], exec_report[1]});
  if (pid < 0) {
    CloseAll({in[1], out[0], err[0], exec_report[0]});
    return absl::ResourceExhaustedError(absl::StrCat("cannot start the handler: ", std::strerror(spawn_errno)));
  }
  setpgid(pid, pid);
  int child_errno = 0;
  ssize_t n;
  while ((n = read(exec_report[0], &child_errno, sizeof(child_errno))) < 0 && errno == EINTR) {
  }
  close(exec_report[0]);
  if (n == sizeof(child_errno)) {
    int status;
    ReapHandler(pid, /*block=*/true, &status);
    CloseAll({in[1], out[0], err[0]});
    return absl::FailedPreconditionError(
        absl::StrCat("cannot execute handler ", argv[0], ": ", std::strerror(child_errno)));
  }
  for (int fd : {out[0], err[0]}) {
    if (fd >= 0) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  // Writes to a handler that died must fail with EPIPE, not kill the worker.
  signal(SIGPIPE, SIG_IGN);
  return HandlerProcess{pid, in[1], out[0], err[0]};
}

void KillHandler(pid_t pid) {
  if (pid > 0) kill(-pid, SIGKILL);
}

bool ReapHandler(pid_t pid, bool block, int* status) {
  int not_a_child = 0;
  while (true) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid) {
      handler_children::Forget(pid);
      return true;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == ECHILD) {
      // The session supervisor's reaper may have got there first (and be about to hand the
      // status over); or it was reaped already. Either way, waiting long makes no sense.
      if (handler_children::TakeExit(pid, status)) return true;
      if (++not_a_child > 200) return false;
    }
    if (!block) return false;
    usleep(5000);
  }
}

}  // namespace gantry::worker
