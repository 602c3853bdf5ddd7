// The fault suite's invariant checker (issue 7), run after a fault test: what PostgreSQL says
// and what runs on this machine must agree.
//   - every acknowledged CreateSession is in PostgreSQL;
//   - every RUNNING or HIBERNATED session has a live process under one of the fleet's workers,
//     and every process of a session in this fleet's database is such a session's, under a live
//     worker (no ghosts, no orphans);
//   - no GPU is held by two live sessions of one worker, and no controller has more GPUs
//     reserved than it has;
//   - nothing is left half-placed (PENDING, SCHEDULED or STARTING) once the fleet is quiet,
//     but a queued session (PENDING in the queue), which holds no placement;
//   - no session is placed from the queue twice, and no team holds more than its quota;
//   - each session's events are a legal path through the state machine ending at its phase.
#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {

struct InvariantOptions {
  // Session ids some client was told about; an empty one (a refused create's) counts as none.
  std::vector<std::string> acknowledged;
  absl::Duration settle = absl::Seconds(15);  // how long the fleet gets to become quiet
  std::string dsn;  // the fleet's database when empty
};

// One line per violation; empty when every invariant holds now.
std::vector<std::string> InvariantViolations(LocalFleet& fleet, const InvariantOptions& options);
// Waits up to options.settle for the invariants to hold; fails the test with the violations.
void RequireInvariants(LocalFleet& fleet, const InvariantOptions& options);
// The same with the acknowledged session ids and the defaults.
void RequireInvariants(LocalFleet& fleet, std::vector<std::string> acknowledged = {});

}  // namespace gantry::testing
