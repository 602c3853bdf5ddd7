// How gantry-worker starts a session through gantry-keeper (keeper_main.cc), both sides.
//
// The worker posix_spawns the keeper (a small static program: no fork of the worker's address
// space, whose page tables and copy-on-write pages a forked keeper would share for the whole
// session) with the session's environment as its own and, in argv:
//
//   gantry-keeper SESSION_ID WORKER_PID DEATH_SIGNAL FLAGS UID GID GROUPS
//
// FLAGS: any of 'c' (a cgroup directory at kCgroupDirFd: create the session inside it),
// 'p' (its cgroup.procs at kCgroupProcsFd: join through it when that is refused), 'u' (become
// UID/GID with GROUPS, comma-separated, before exec). The session's command is not in argv, so
// that `ps` and anything that looks for the command see the session alone: it is in a sealed
// memfd at kSpecFd, NUL-terminated strings: the working directory ("" = stay where the keeper
// is), then each argument. The descriptors below are the only ones the keeper keeps; 0 is
// /dev/null, 1 and 2 the session's log.
#pragma once

namespace gantry::worker::keeper {

constexpr int kPidReportFd = 3;  // The keeper writes the session's pid (a pid_t), then closes it.
constexpr int kExecReportFd =
    4;  // The session writes an ExecFailure if it cannot exec; EOF = it did.
constexpr int kCgroupDirFd = 5;
constexpr int kCgroupProcsFd = 6;
constexpr int kSpecFd = 7;
constexpr int kFirstFreeFd = 8;  // Everything from here on is closed at the keeper's start.
constexpr int kArgs = 8;         // argv[0..7].

// What a session process reports when it cannot become its command.
struct ExecFailure {
  enum Stage : int { kCgroup, kIdentity, kChdir, kExec } stage;
  int err;
};

// The keeper's exit status when it could not start the session at all (no pid reported).
constexpr int kKeeperFailed = 126;
// Its exit status when the worker died before the keeper could tie its fate to it.
constexpr int kWorkerGone = 127;

}  // namespace gantry::worker::keeper
