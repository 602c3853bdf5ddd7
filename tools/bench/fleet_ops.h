// What several scenarios do to their fleet between measured rounds (never timed).
#pragma once

#include <string>
#include <vector>

#include "tests/support/local_fleet.h"

namespace gantry::bench {

// Deletes the sessions through the API, 8 at a time, and waits until none is live.
void DeleteAll(testing::LocalFleet& fleet, const std::vector<std::string>& ids);

}  // namespace gantry::bench
