// What several scenarios do to their fleet between measured rounds (never timed), and read from it.
#pragma once

#include <string>
#include <vector>

#include "tests/support/local_fleet.h"

namespace gantry::bench {

// Deletes the sessions through the API, 8 at a time, and waits until none is live.
void DeleteAll(testing::LocalFleet& fleet, const std::vector<std::string>& ids);

// Waits until `worker` has removed the homes of the sessions that ended (directories named by
// session UUIDs in its session directory): that cleanup runs two processes a session as the
// session's uid, and left running it would be measured as part of the next phase.
void WaitForHomesRemoved(testing::LocalFleet& fleet, const std::string& worker = "w1");

// Makes the controllers started after it serve /metrics (the last one started keeps the port).
void ServeControllerMetrics(testing::LocalFleet& fleet);
// What that controller's /metrics say of its placements, p99 in µs (see HistogramP99Micros):
// the decision alone, the wait for the fleet's lock before it, and the two together; and the
// decision's median (on two loaded cores the p99 is mostly the scheduler's).
struct ControllerPlacementP99 {
  double decision_us = -1, lock_wait_us = -1, choice_us = -1;
  double decision_p50_us = -1;
};
ControllerPlacementP99 ControllerPlacementP99Micros(testing::LocalFleet& fleet);

// From /metrics text: the 99th percentile (or `quantile`) in µs of histogram `name` in the series whose labels
// contain `label` ("" for the first series), interpolated within its bucket as Prometheus'
// histogram_quantile does; -1 without observations.
double HistogramP99Micros(const std::string& metrics, const std::string& name, const std::string& label,
                          double quantile = 0.99);

}  // namespace gantry::bench
