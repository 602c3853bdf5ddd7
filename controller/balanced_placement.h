// The production balancer (DESIGN.md, "Selection and placement"): among online workers, those
// with every skill asked for, then those with enough free GPUs of the model and memory asked
// for, then the fewest active sessions, round-robin among equals. The candidates come in that
// last order (WorkerLoadOrder), so the first that fits is the choice: a decision looks at
// workers until one fits, and at every one only to explain a refusal. GPUs are taken in the
// worker's order.
#pragma once

#include "controller/placement_policy.h"

namespace gantry::controller {

// Whether `gpu` is of the model (a case-insensitive substring of its name) and has the memory
// `req` asks for.
bool GpuMatches(const v1::GpuInfo& gpu, const v1::GpuRequirements& req);

class BalancedPlacement : public PlacementPolicy {
 public:
  absl::StatusOr<PlacementChoice> Choose(const CandidateWalk& online, const GpuLedger& ledger,
                                         const v1::SessionSpec& spec, const std::string& node_id) override;
};

}  // namespace gantry::controller
