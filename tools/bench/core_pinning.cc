#include "tools/bench/core_pinning.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace gantry::bench {

namespace {

// Every thread of `pid` (sched_setaffinity takes one thread at a time).
void PinThreads(pid_t pid, const cpu_set_t& cores) {
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    const pid_t tid = static_cast<pid_t>(std::atoi(task.path().filename().c_str()));
    if (tid > 0) sched_setaffinity(tid, sizeof(cores), &cores);  // A thread that just ended: nothing to pin.
  }
}

}  // namespace

PinnedApart::PinnedApart(pid_t measured, const std::vector<pid_t>& others) {
  CPU_ZERO(&allowed_);
  if (sched_getaffinity(0, sizeof(allowed_), &allowed_) != 0 || CPU_COUNT(&allowed_) < 2) return;
  int last = -1;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &allowed_)) last = c;
  }
  cpu_set_t its_own, rest = allowed_;
  CPU_ZERO(&its_own);
  CPU_SET(last, &its_own);
  CPU_CLR(last, &rest);
  PinThreads(measured, its_own);
  PinThreads(getpid(), rest);
  for (pid_t other : others) PinThreads(other, rest);
  pinned_ = true;
}

PinnedApart::~PinnedApart() {
  if (pinned_) PinThreads(getpid(), allowed_);
}

}  // namespace gantry::bench
