// A PlacementPolicy for tests of the Fleet: chooses what it is told (a worker by name and GPUs),
// whatever the ledger says, and records what it was offered.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "controller/placement_policy.h"

namespace gantry::controller::testing {

class FakePlacementPolicy : public PlacementPolicy {
 public:
  std::string worker;             // Chosen by name; absent from the candidates: UNAVAILABLE.
  std::vector<std::string> gpus;  // Chosen as they are.
  std::vector<std::string> offered;  // Names of the workers offered at the last call.

  absl::StatusOr<PlacementChoice> Choose(const CandidateWalk& online, const GpuLedger&, const v1::SessionSpec&,
                                         const std::string&) override {
    offered.clear();
    std::optional<size_t> position;
    online.Walk([&](size_t i, const WorkerCandidate& w) {
      offered.push_back(*w.name);
      if (*w.name == worker && !position.has_value()) position = i;
      return true;
    });
    if (position.has_value()) return PlacementChoice{*position, gpus};
    return absl::UnavailableError("fake policy: worker " + worker + " was not offered");
  }
};

}  // namespace gantry::controller::testing
