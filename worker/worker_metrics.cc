#include "worker/worker_metrics.h"

#include <map>
#include <set>

#include "common/metrics.h"
#include "common/session_phase.h"

namespace gantry::worker {

void RegisterWorkerMetrics(const SessionRunner* sessions, const InvokeRunner* invokes,
                           std::function<std::vector<v1::GpuInfo>()> gpus) {
  Metrics::Global().OnScrape([sessions, invokes, gpus] {
    using Series = std::vector<std::pair<MetricLabels, double>>;
    Metrics& m = Metrics::Global();
    std::map<std::string, double> by_phase = {{"RUNNING", 0}, {"HIBERNATED", 0}};
    std::set<std::string> held;
    for (const v1::RunningSession& s : sessions->Running()) {
      by_phase[std::string(PhaseName(s.phase()))] += 1;
      held.insert(s.gpu_uuids().begin(), s.gpu_uuids().end());
    }
    Series phases;
    for (const auto& [phase, n] : by_phase) phases.push_back({{{"phase", phase}}, n});
    m.GaugeReplace("gantry_worker_sessions", "Session processes on this worker, by phase", phases);
    m.GaugeReplace("gantry_invokes_in_flight", "Capability requests being served", {{{}, static_cast<double>(invokes->active())}});

    const std::vector<v1::GpuInfo> devices = gpus();
    Series memory, utilisation, temperature, power;
    for (const v1::GpuInfo& g : devices) {
      MetricLabels labels = {{"gpu", std::to_string(g.index())}, {"uuid", g.uuid()}, {"model", g.name()}};
      memory.push_back({labels, static_cast<double>(g.memory_total_bytes() - g.memory_free_bytes())});
      utilisation.push_back({labels, g.utilization_percent() / 100.0});
      temperature.push_back({labels, static_cast<double>(g.temperature_celsius())});
      power.push_back({labels, g.power_milliwatts() / 1000.0});
    }
    m.GaugeReplace("gantry_gpus", "GPUs of this worker", {{{}, static_cast<double>(devices.size())}});
    m.GaugeReplace("gantry_gpus_used", "GPUs of this worker held by sessions", {{{}, static_cast<double>(held.size())}});
    m.GaugeReplace("gantry_gpu_memory_used_bytes", "GPU memory in use (NVML)", memory);
    m.GaugeReplace("gantry_gpu_utilization_ratio", "GPU busy time over the last sample period, 0..1 (NVML)", utilisation);
    m.GaugeReplace("gantry_gpu_temperature_celsius", "GPU temperature (NVML)", temperature);
    m.GaugeReplace("gantry_gpu_power_watts", "GPU power draw (NVML)", power);
  });
}

}  // namespace gantry::worker
