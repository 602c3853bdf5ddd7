// The GPUs this worker offers. Simulated GPUs come from configuration for development and
// tests (NVML discovery is the controller/worker issue's work); they are reported with
// simulated=true and the worker says so loudly at start.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gantry/v1/types.pb.h"

namespace gantry::worker {

// Parses "COUNT[:MODEL[:MEMORY_GIB]]" groups separated by ';', e.g. "2:Simulated A100:40".
// UUIDs are derived from the worker name so they are stable across restarts.
absl::StatusOr<std::vector<v1::GpuInfo>> ParseSimulatedGpus(const std::string& spec,
                                                           const std::string& worker_name);

}  // namespace gantry::worker
