// Load generation for the scenarios: closed-loop (N calls by C threads, each as soon as the
// last returns) and open-loop (calls started at a fixed rate, whatever the replies do).
#pragma once

#include <functional>
#include <vector>

#include "absl/time/time.h"

namespace gantry::bench {

struct LoadResult {
  double seconds = 0;            // wall time for all calls
  std::vector<double> latency_ms;  // one per successful call
  int failures = 0;
};

// Calls `call(i)` for i in [0, n) from `concurrency` threads; `call` returns false on failure.
LoadResult ClosedLoop(int n, int concurrency, const std::function<bool(int)>& call);
// Starts call(i) every 1/rate seconds on a pool of `concurrency` threads; latency counts from
// the scheduled start, so a backlog shows as latency (no coordinated omission).
LoadResult OpenLoop(int n, double rate_per_second, int concurrency, const std::function<bool(int)>& call);

}  // namespace gantry::bench
