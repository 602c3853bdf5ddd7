// The controller's figures for /metrics, read from its Fleet at each scrape: workers by
// status, GPUs and GPUs in use, sessions and invokes in flight on this node.
#pragma once

#include "controller/fleet.h"

namespace gantry::controller {

void RegisterControllerMetrics(Fleet* fleet);

}  // namespace gantry::controller
