// How the controller chooses a worker and GPUs for a session, apart from everything else the
// Fleet keeps (streams, liveness, sessions), so the choice can be tested, and replaced, on its
// own. The Fleet lists the online workers in its order of preference (WorkerLoadOrder: fewest
// active sessions first, round-robin among equals) and holds its lock across Choose; a policy
// keeps no lock of its own.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "controller/gpu_ledger.h"
#include "gantry/v1/types.pb.h"

namespace gantry::controller {

// An online worker as a policy sees it. The pointers are the Fleet's, valid during Choose.
struct WorkerCandidate {
  const std::string* name;
  const std::vector<v1::GpuInfo>* gpus;
  const std::vector<std::string>* skills;
  size_t active_sessions;
};

struct PlacementChoice {
  size_t worker;                    // Index into the candidates.
  std::vector<std::string> gpus;    // Free (in the ledger) GPUs of that worker, as many as asked.
};

class PlacementPolicy {
 public:
  virtual ~PlacementPolicy() = default;
  // Chooses for `spec` among `online` workers (most preferred first), with `ledger` saying
  // which GPUs are free.
  // RESOURCE_EXHAUSTED naming the field that cannot be met, with `node_id` in the message;
  // UNAVAILABLE when `online` is empty.
  virtual absl::StatusOr<PlacementChoice> Choose(const std::vector<WorkerCandidate>& online,
                                                 const GpuLedger& ledger, const v1::SessionSpec& spec,
                                                 const std::string& node_id) = 0;
};

}  // namespace gantry::controller
