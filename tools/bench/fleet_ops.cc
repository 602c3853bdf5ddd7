#include "tools/bench/fleet_ops.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "tools/bench/load.h"

namespace gantry::bench {

void DeleteAll(testing::LocalFleet& fleet, const std::vector<std::string>& ids) {
  ClosedLoop(static_cast<int>(ids.size()), 8, [&](int i) {
    v1::DeleteSessionRequest request;
    request.set_id(ids[i]);
    v1::Session reply;
    grpc::ClientContext ctx;
    return fleet.AdminSessions()->DeleteSession(&ctx, request, &reply).ok();
  });
  REQUIRE(testing::WaitFor([&] {
    return fleet.db().Scalar("SELECT count(*) FROM sessions WHERE phase NOT IN ('TERMINATED', 'FAILED')") == "0";
  }, absl::Seconds(60)));
}

void WaitForHomesRemoved(testing::LocalFleet& fleet, const std::string& worker) {
  const std::string dir = fleet.dir().Sub("sessions-" + worker);
  auto homes = [&] {
    int n = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (entry.is_directory() && entry.path().filename().string().size() == 36) ++n;
    }
    return n;
  };
  REQUIRE(testing::WaitFor([&] { return homes() == 0; }, absl::Seconds(120)));
}

void ServeControllerMetrics(testing::LocalFleet& fleet) {
  fleet.controller_env["GANTRY_METRICS_LISTEN"] = "127.0.0.1:0";
  fleet.controller_env["GANTRY_METRICS_PORT_FILE"] = fleet.dir().Sub("controller-metrics.port");
}

ControllerPlacementP99 ControllerPlacementP99Micros(testing::LocalFleet& fleet) {
  int port = testing::WaitForPortFile(fleet.dir().Sub("controller-metrics.port"), absl::Seconds(5));
  REQUIRE(port > 0);
  const std::string metrics = testing::ScrapeMetrics(fleet.pki().ca(), port);
  ControllerPlacementP99 p99;
  p99.decision_us = HistogramP99Micros(metrics, "gantry_placement_decision_seconds", "outcome=\"placed\"");
  p99.lock_wait_us = HistogramP99Micros(metrics, "gantry_placement_lock_wait_seconds", "");
  p99.choice_us = HistogramP99Micros(metrics, "gantry_placement_choice_seconds", "");
  p99.decision_p50_us = HistogramP99Micros(metrics, "gantry_placement_decision_seconds", "outcome=\"placed\"", 0.5);
  return p99;
}

double HistogramP99Micros(const std::string& metrics, const std::string& name, const std::string& label,
                          double quantile) {
  std::vector<std::pair<double, double>> buckets;  // (le, cumulative count)
  std::istringstream in(metrics);
  const std::string prefix = name + "_bucket{";
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) != 0 || line.find(label) == std::string::npos) continue;
    size_t le = line.find("le=\"");
    if (le == std::string::npos) continue;
    std::string bound = line.substr(le + 4, line.find('"', le + 4) - le - 4);
    double count = std::stod(line.substr(line.rfind(' ') + 1));
    buckets.emplace_back(bound == "+Inf" ? 1e9 : std::stod(bound), count);
  }
  if (buckets.empty() || buckets.back().second == 0) return -1;
  const double rank = quantile * buckets.back().second;
  double lower = 0, below = 0;
  for (const auto& [le, count] : buckets) {
    if (count >= rank) {
      if (le >= 1e9) return lower * 1e6;  // beyond the last finite bound
      return (lower + (le - lower) * (rank - below) / std::max(count - below, 1.0)) * 1e6;
    }
    lower = le;
    below = count;
  }
  return -1;
}

}  // namespace gantry::bench
