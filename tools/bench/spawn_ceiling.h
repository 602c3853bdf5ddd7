// The spawn scenarios' physical baseline: how fast this machine starts the same long-lived
// process with posix_spawn, nothing of Gantry in the way.
#pragma once

namespace gantry::bench {

// posix_spawn of `/bin/sleep 3600` n times in a loop, the children kept alive until the end
// (then killed and reaped): spawns per second.
double SpawnCeiling(int n);

}  // namespace gantry::bench
