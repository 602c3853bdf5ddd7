// spawn-worker: the spawn scenario without the control plane. One real gantry-worker connected
// to a stand-in controller (BenchController) that sends start commands straight down its stream,
// 16 at a time, each counted when the worker reports it STARTED: what the worker alone sustains
// (its home, log, cgroup, keeper and exec for each session), against `posix_spawn` of the same
// command in the same run. Read with spawn: the difference is the control plane's share.
#include <catch2/catch.hpp>

#include <random>

#include "absl/strings/str_format.h"
#include "tests/support/local_fleet.h"
#include "tools/bench/bench_controller.h"
#include "tools/bench/bench_options.h"
#include "tools/bench/bench_report.h"
#include "tools/bench/fleet_ops.h"
#include "tools/bench/load.h"
#include "tools/bench/spawn_ceiling.h"

namespace gantry::bench {
namespace {

std::string NewSessionId(std::mt19937_64& random) {
  const uint64_t a = random(), b = random();
  return absl::StrFormat("%08x-%04x-4%03x-8%03x-%012x", a >> 32, (a >> 16) & 0xffff, a & 0xfff, b >> 52,
                         b & 0xffffffffffffULL);
}

}  // namespace

TEST_CASE("spawn-worker", "[bench]") {
  const int n = Size(300, 30);
  testing::LocalFleet fleet;
  BenchController controller(fleet.pki());
  fleet.worker_env["CONTROLLER_URL"] = controller.address();
  fleet.StartWorker("w1", "0");
  REQUIRE(controller.WaitForWorker(absl::Seconds(30)));
  std::mt19937_64 random(std::random_device{}());
  Figure rate{"spawn-worker", "sessions started by the worker alone per second", "1/s"};
  for (int round = 0; round < Options().rounds; ++round) {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) ids.push_back(NewSessionId(random));
    LoadResult started = ClosedLoop(n, 16, [&](int i) {
      return controller.Start(ids[static_cast<size_t>(i)], testing::SleepSpec(absl::StrCat(91000 + i), 0),
                              absl::Seconds(30));
    });
    CHECK(started.failures == 0);
    LoadResult stopped = ClosedLoop(n, 16, [&](int i) {
      return controller.Stop(ids[static_cast<size_t>(i)], absl::Seconds(30));
    });
    CHECK(stopped.failures == 0);
    WaitForHomesRemoved(fleet);
    rate.rounds.push_back(started.latency_ms.size() / started.seconds);
    rate.baseline_rounds.push_back(SpawnCeiling(n));
  }
  rate.target = Target::AtLeast(0.8, true);
  Report::Global().Add(rate);
}

}  // namespace gantry::bench
