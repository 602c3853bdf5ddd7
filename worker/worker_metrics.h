// The worker's figures for /metrics, read at each scrape: its sessions by phase, its GPUs and
// those in use, each GPU's live memory, utilisation, temperature and power (NVML), and the
// invokes in flight.
#pragma once

#include <functional>
#include <vector>

#include "gantry/v1/types.pb.h"
#include "worker/invoke_runner.h"
#include "worker/session_runner.h"

namespace gantry::worker {

// `gpus` returns the GPUs with live figures (NVML) or as registered (simulated).
void RegisterWorkerMetrics(const SessionRunner* sessions, const InvokeRunner* invokes,
                           std::function<std::vector<v1::GpuInfo>()> gpus);

}  // namespace gantry::worker
