// Keeps the process under measurement off the harness's cores: on this 2-core machine class the
// hollow workers (1,000 mTLS streams, all in the bench process) took the controller's core in
// the middle of its placement decisions, and a decision of microseconds read as milliseconds.
// A real node's controller does not share its cores with a thousand simulated workers.
#pragma once

#include <sched.h>
#include <sys/types.h>

#include <vector>

namespace gantry::bench {

// While it lives: every thread of `measured` on the last core, every thread of `others` and of
// this process on the rest (threads started later inherit it). With fewer than two cores
// nothing is pinned. Its end gives this process's threads back every core.
class PinnedApart {
 public:
  PinnedApart(pid_t measured, const std::vector<pid_t>& others);
  ~PinnedApart();
  PinnedApart(const PinnedApart&) = delete;
  PinnedApart& operator=(const PinnedApart&) = delete;
  bool pinned() const { return pinned_; }

 private:
  cpu_set_t allowed_;
  bool pinned_ = false;
};

}  // namespace gantry::bench
