// Which running sessions a create of a higher priority displaces, when it does not fit: pure
// rules, no I/O (PreemptionStore reads the candidates and carries the plan out).
//
// A session's GPUs are all on one worker, so a plan frees room on one worker: the victims on
// it, with the GPUs it has free, must give the preemptor its GPUs, and the worker's controller
// must have that many unreserved once the victims' reservations go. Among the plans that do,
// the one that stops the least within-quota use (a team holding more than its quota, as after
// its quota was lowered, is preempted first), then the fewest sessions, then the lowest
// priorities, then the most recently started (the least work lost). A create no plan makes
// room for preempts nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace gantry::api {

// A running session that may be preempted: of a preemptible class below the preemptor's, run
// at least its class's min_runtime, on a controller where the preemptor could run.
struct PreemptionCandidate {
  std::string session_id;
  std::string priority_class;
  int gpus = 0;
  int32_t priority = 0;
  absl::Time started;
  bool over_quota = false;  // Its team holds more GPUs than its quota allows.
  // Where it runs, and that place's room as last known: the worker's free GPUs (reported) and
  // its controller's unreserved GPUs (PostgreSQL's reservations).
  std::string controller_id;
  std::string worker_id;
  int worker_gpus_free = 0;
  int controller_unreserved = 0;
};

struct PreemptionPlan {
  std::string controller_id;
  std::string worker_id;
  std::vector<PreemptionCandidate> victims;  // In the order they are named to users.
};

// The best plan that makes room for `gpus` GPUs, or none. Candidates of any number of workers.
std::optional<PreemptionPlan> PlanPreemption(int gpus, const std::vector<PreemptionCandidate>& candidates);

}  // namespace gantry::api
