// What the footprint figures are made of: resident memory (VmRSS) of the API server, the first
// controller and the first worker, and the open file descriptors of the latter two, sampled
// before and while K items (sessions, log streams, invokes) are held; reported per item.
#pragma once

#include <string>

#include "tests/support/local_fleet.h"

namespace gantry::bench {

struct FootprintSample {
  testing::LocalFleet::Rss rss;
  int worker_fds = 0, controller_fds = 0;
};

// After a short pause that lets allocations settle.
FootprintSample TakeFootprint(testing::LocalFleet& fleet);
// Adds the "footprint" figures for `what` ("per idle session"): the growth divided by k.
void AddFootprintPerItem(const std::string& what, const FootprintSample& before, const FootprintSample& after,
                         int k);
// Adds each process's threads over idle while `what` ("1000 invokes in flight") are held, to
// `scenario`, with the target of streams on reactors: at most 8 more.
void AddThreadsOverIdle(const std::string& scenario, const std::string& what, const testing::LocalFleet::Threads& idle,
                        const testing::LocalFleet::Threads& with);

}  // namespace gantry::bench
