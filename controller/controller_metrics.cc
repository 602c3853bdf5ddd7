#include "controller/controller_metrics.h"

#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "common/metrics.h"

namespace gantry::controller {

void RegisterControllerMetrics(Fleet* fleet) {
  Metrics::Global().OnScrape([fleet] {
    Metrics& m = Metrics::Global();
    std::map<std::string, double> by_status = {{"ONLINE", 0}, {"OFFLINE", 0}};
    double gpus = 0, used = 0;
    for (const v1::Worker& w : fleet->Workers()) {
      std::string status = v1::WorkerStatus_Name(w.status());
      if (absl::StartsWith(status, "WORKER_STATUS_")) status = status.substr(14);
      by_status[status] += 1;
      for (const auto& g : w.gpus()) {
        gpus += 1;
        used += g.session_id().empty() ? 0 : 1;
      }
    }
    std::vector<std::pair<MetricLabels, double>> workers;
    for (const auto& [status, n] : by_status) workers.push_back({{{"status", status}}, n});
    m.GaugeReplace("gantry_workers", "Workers known to this controller, by status", workers);
    m.GaugeReplace("gantry_gpus", "GPUs of this node's workers", {{{}, gpus}});
    m.GaugeReplace("gantry_gpus_used", "GPUs of this node held by sessions", {{{}, used}});
    const FleetSnapshot snap = fleet->Snapshot();
    m.GaugeReplace("gantry_sessions_active", "Sessions live on this node", {{{}, static_cast<double>(snap.load.active_sessions())}});
  });
}

}  // namespace gantry::controller
