// How the controller chooses a worker and GPUs for a session, apart from everything else the
// Fleet keeps (streams, liveness, sessions), so the choice can be tested, and replaced, on its
// own. The Fleet shows the online workers in its order of preference (WorkerLoadOrder: fewest
// active sessions first, round-robin among equals), one at a time, and holds its lock across
// Choose; a policy keeps no lock of its own.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"

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

// The online workers, most preferred first, shown one at a time: a policy that takes the first
// fit stops there, so a decision looks at a few workers however many the node has (a list of
// every worker, built per decision, was most of a decision's time at 1,000 workers).
class CandidateWalk {
 public:
  virtual ~CandidateWalk() = default;
  // No online worker.
  virtual bool empty() const = 0;
  // Calls `visit(position, candidate)` for position 0, 1, ... in order of preference until it
  // returns false or the workers run out.
  virtual void Walk(absl::FunctionRef<bool(size_t, const WorkerCandidate&)> visit) const = 0;
};

// A walk over candidates listed beforehand (tests, and policies' callers that have a list).
class CandidateList : public CandidateWalk {
 public:
  explicit CandidateList(std::vector<WorkerCandidate> candidates) : candidates_(std::move(candidates)) {}
  bool empty() const override { return candidates_.empty(); }
  void Walk(absl::FunctionRef<bool(size_t, const WorkerCandidate&)> visit) const override {
    for (size_t i = 0; i < candidates_.size(); ++i) {
      if (!visit(i, candidates_[i])) return;
    }
  }

 private:
  std::vector<WorkerCandidate> candidates_;
};

struct PlacementChoice {
  size_t worker;                    // Its position in the walk.
  std::vector<std::string> gpus;    // Free (in the ledger) GPUs of that worker, as many as asked.
};

class PlacementPolicy {
 public:
  virtual ~PlacementPolicy() = default;
  // Chooses for `spec` among the `online` workers it walks (most preferred first), with
  // `ledger` saying which GPUs are free; only a worker the walk showed may be chosen.
  // RESOURCE_EXHAUSTED naming the field that cannot be met, with `node_id` in the message;
  // UNAVAILABLE when `online` is empty.
  virtual absl::StatusOr<PlacementChoice> Choose(const CandidateWalk& online,
                                                 const GpuLedger& ledger, const v1::SessionSpec& spec,
                                                 const std::string& node_id) = 0;
};

}  // namespace gantry::controller
