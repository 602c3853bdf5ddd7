// gantry-keeper: the small process between gantry-worker and one session (keeper_protocol.h).
//
// It exists because the death signal (PR_SET_PDEATHSIG) reaches one direct child, and a process
// that receives it while stopped (a hibernated session) cannot act: the keeper is never in the
// session's process group, so SIGSTOP to the group never stops it, and when the worker dies,
// even by SIGKILL, the keeper kills the session's whole group. It exits with the session
// process's status (re-raising its signal), which is what the worker's reaper sees.
//
// Linked statically and kept to libc: its exec costs no dynamic loading, and a session's keeper
// holds a few hundred KiB, not a copy of the worker.
#include <grp.h>          // setgroups
#include <linux/sched.h>  // struct clone_args, CLONE_INTO_CGROUP
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "worker/keeper_protocol.h"

namespace {

using gantry::worker::keeper::ExecFailure;
namespace k = gantry::worker::keeper;

// The session's process group, to kill when the worker dies.
volatile pid_t g_session_group = 0;

// Runs when the worker dies. kill() is async-signal-safe, and SIGKILL reaches the session's
// processes even while they are stopped (hibernated).
void KillSessionGroup(int) {
  if (g_session_group > 0) kill(-g_session_group, SIGKILL);
  _exit(137);
}

bool ParseNumber(const char* text, long max, long* out) {
  if (text == nullptr || *text == '\0') return false;
  errno = 0;
  char* end = nullptr;
  long value = std::strtol(text, &end, 10);
  if (errno != 0 || *end != '\0' || value < 0 || value > max) return false;
  *out = value;
  return true;
}

// "1,2,3" (or "") into gids.
bool ParseGroups(const char* text, std::vector<gid_t>* out) {
  const char* p = text;
  while (*p != '\0') {
    errno = 0;
    char* end = nullptr;
    unsigned long gid = std::strtoul(p, &end, 10);
    if (errno != 0 || end == p || (*end != ',' && *end != '\0') || gid > 0xfffffffeUL) return false;
    out->push_back(static_cast<gid_t>(gid));
    p = *end == ',' ? end + 1 : end;
  }
  return true;
}

// The working directory and the command, from the spec memfd.
bool ReadSpec(std::vector<char>* text, std::string_view* workdir, std::vector<char*>* command) {
  struct stat st;
  if (fstat(k::kSpecFd, &st) != 0 || st.st_size <= 0 || st.st_size > (64 << 20)) return false;
  text->resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < text->size()) {
    ssize_t n = pread(k::kSpecFd, text->data() + got, text->size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  if (text->back() != '\0') return false;
  std::vector<char*> strings;
  for (size_t at = 0; at < text->size(); at += std::strlen(text->data() + at) + 1)
    strings.push_back(text->data() + at);
  if (strings.size() < 2 || *strings[1] == '\0')
    return false;  // A working directory and a command.
  *workdir = strings[0];
  command->assign(strings.begin() + 1, strings.end());
  command->push_back(nullptr);
  return true;
}

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

// In the session process, before exec: everything that can fail is reported on kExecReportFd.
[[noreturn]] void BecomeSession(char** command, bool join_through_procs, bool drop, uid_t uid,
                                gid_t gid, const std::vector<gid_t>& groups, const char* workdir,
                                pid_t keeper) {
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // If the keeper dies, so does the session.
  if (getppid() != keeper) _exit(k::kWorkerGone);
  sigset_t empty;
  sigemptyset(&empty);
  sigprocmask(SIG_SETMASK, &empty, nullptr);  // The worker blocks SIGTERM; sessions must not.
  // The reports and cgroup descriptors close at exec: EOF on kExecReportFd means it ran.
  close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
  ExecFailure failure = {ExecFailure::kCgroup, 0};
  if (join_through_procs && write(k::kCgroupProcsFd, "0", 1) != 1) {
    failure.err = errno;
  } else if (drop && (setgroups(groups.size(), groups.data()) != 0 ||
                      setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0)) {
    // Groups first, then the gid, then the uid: after setresuid there is no way back.
    failure = {ExecFailure::kIdentity, errno};
  } else if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    // Nothing it executes gains privileges (setuid binaries, file capabilities).
    failure = {ExecFailure::kIdentity, errno};
  } else if (*workdir != '\0' && chdir(workdir) != 0) {
    failure = {ExecFailure::kChdir, errno};
  } else {
    execvp(command[0], command);  // The keeper's environment is the session's.
    failure = {ExecFailure::kExec, errno};
  }
  WriteAll(k::kExecReportFd, &failure, sizeof(failure));
  _exit(127);
}

}  // namespace

int main(int argc, char** argv) {
  // Nothing of the worker's that it left open by mistake stays open here or in the session.
  close_range(k::kFirstFreeFd, ~0U, 0);
  long worker = 0, death_signal = 0, uid = 0, gid = 0;
  std::vector<gid_t> groups;
  std::vector<char> spec;
  std::string_view workdir;
  std::vector<char*> command;
  if (argc != k::kArgs || !ParseNumber(argv[2], 1L << 22, &worker) ||
      !ParseNumber(argv[3], SIGRTMAX, &death_signal) || !ParseNumber(argv[5], 0xfffffffeL, &uid) ||
      !ParseNumber(argv[6], 0xfffffffeL, &gid) || !ParseGroups(argv[7], &groups) ||
      !ReadSpec(&spec, &workdir, &command)) {
    static const char kUsage[] =
        "gantry-keeper: started by gantry-worker only (see worker/keeper_protocol.h)\n";
    WriteAll(2, kUsage, sizeof(kUsage) - 1);
    return k::kKeeperFailed;
  }
  close(k::kSpecFd);
  const char* flags = argv[4];
  const bool in_cgroup = std::strchr(flags, 'c') != nullptr;
  const bool has_procs = std::strchr(flags, 'p') != nullptr;
  const bool drop = std::strchr(flags, 'u') != nullptr;

  struct sigaction on_death = {};
  on_death.sa_handler = KillSessionGroup;
  sigaction(static_cast<int>(death_signal), &on_death, nullptr);
  sigset_t death;
  sigemptyset(&death);
  sigaddset(&death, static_cast<int>(death_signal));
  sigprocmask(SIG_UNBLOCK, &death, nullptr);
  prctl(PR_SET_PDEATHSIG, death_signal);
  if (getppid() != static_cast<pid_t>(worker))
    return k::kWorkerGone;  // It died before prctl took effect.

  const pid_t self = getpid();
  pid_t session = -1;
  bool born_in_cgroup = false;
  if (in_cgroup) {
    // Created inside its cgroup: moving a process through cgroup.procs costs 10-15 ms (the
    // kernel waits out an RCU grace period).
    struct clone_args args = {};
    args.flags = CLONE_INTO_CGROUP;
    args.exit_signal = SIGCHLD;
    args.cgroup = static_cast<uint64_t>(k::kCgroupDirFd);
    session = static_cast<pid_t>(syscall(SYS_clone3, &args, sizeof(args)));
    born_in_cgroup = session >= 0;
  }
  if (!born_in_cgroup) session = fork();  // Older kernels: the child joins through cgroup.procs.
  if (session == 0) {
    BecomeSession(command.data(), !born_in_cgroup && has_procs, drop, static_cast<uid_t>(uid),
                  static_cast<gid_t>(gid), groups, workdir.data(), self);
  }
  if (session < 0) return k::kKeeperFailed;
  setpgid(session, session);  // Also from here, so the group exists before anyone signals it.
  g_session_group = session;
  WriteAll(k::kPidReportFd, &session, sizeof(session));
  // The keeper holds nothing: the log completes when the session's copies close.
  close_range(0, ~0U, 0);
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
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}
