// A PlacementPolicy for tests of the Fleet: chooses what it is told (a worker by name and GPUs),
// whatever the ledger says, and records what it was offered.
#pragma once

#include <string>
#include <vector>

#include "controller/placement_policy.h"

namespace gantry::controller::testing {

class FakePlacementPolicy : public PlacementPolicy {
 public:
  std::string worker;             // Chosen by name; absent from the candidates: UNAVAILABLE.
  std::vector<std::string> gpus;  // Chosen as they are.
  std::vector<std::string> offered;  // Names of the workers offered at the last call.

  absl::StatusOr<PlacementChoice> Choose(const std::vector<WorkerCandidate>& online, const GpuLedger&,
                                         const v1::SessionSpec&, const std::string&) override {
    offered.clear();
    for (const auto& w : online) offered.push_back(*w.name);
    for (size_t i = 0; i < online.size(); ++i) {
      if (*online[i].name == worker) return PlacementChoice{i, gpus};
    }
    return absl::UnavailableError("fake policy: worker " + worker + " was not offered");
  }
};

}  // namespace gantry::controller::testing
