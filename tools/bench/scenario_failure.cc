// failure-detection, with the default timing settings (worker heartbeat 1 s, offline after 3
// missed; controller heartbeat 5 s, unhealthy after 3 missed checks): how long until
//   a worker killed with SIGKILL has its session FAILED in PostgreSQL,
//   a worker frozen with SIGSTOP is marked offline by its controller,
//   a controller killed with SIGKILL is unhealthy at the API server.
// Each measured from the signal, polling every 10 ms. No baseline: the targets are absolute.
#include <catch2/catch.hpp>
#include <signal.h>

#include "absl/strings/match.h"
#include "tests/support/local_fleet.h"
#include "tools/bench/bench_options.h"
#include "tools/bench/bench_report.h"

namespace gantry::bench {
namespace {

using testing::LocalFleet;

// The product's defaults, where the test harness shortens them.
void UseDefaultTimings(LocalFleet& fleet) {
  fleet.api_env["GANTRY_CONTROLLER_HEARTBEAT_INTERVAL"] = "5s";
  fleet.api_env["GANTRY_HEALTH_CHECK_INTERVAL"] = "5s";
}

double SecondsUntil(const std::function<bool()>& done, absl::Duration limit) {
  absl::Time begin = absl::Now();
  while (!done()) {
    if (absl::Now() - begin > limit) return absl::ToDoubleSeconds(limit) * 10;  // shows as a miss
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::ToDoubleSeconds(absl::Now() - begin);
}

}  // namespace

TEST_CASE("failure-detection", "[bench]") {
  Figure killed{"failure-detection", "worker SIGKILL to its session FAILED", "s"};
  Figure frozen{"failure-detection", "worker SIGSTOP to offline", "s"};
  Figure controller{"failure-detection", "controller SIGKILL to unhealthy", "s"};
  for (int round = 0; round < Options().rounds; ++round) {
    LocalFleet fleet;
    UseDefaultTimings(fleet);
    fleet.StartSingleNode("1");
    v1::Session session;
    REQUIRE(fleet.CreateAsAdmin(testing::SleepSpec("80001"), &session).ok());
    fleet.StartWorker("w2", "1");
    REQUIRE(testing::WaitFor([&] { return absl::StrContains(fleet.controller().Log(), "worker w2 connected"); },
                             absl::Seconds(10)));

    fleet.worker(0).Signal(SIGKILL);
    killed.rounds.push_back(SecondsUntil([&] {
      return fleet.db().Scalar("SELECT phase FROM sessions WHERE id = '" + session.id() + "'") == "FAILED";
    }, absl::Seconds(30)));

    fleet.worker(1).Signal(SIGSTOP);
    frozen.rounds.push_back(SecondsUntil([&] {
      return absl::StrContains(fleet.controller().Log(), "worker w2 offline");
    }, absl::Seconds(30)));
    fleet.worker(1).Signal(SIGCONT);

    fleet.controller().Signal(SIGKILL);
    controller.rounds.push_back(SecondsUntil([&] {
      return fleet.db().Scalar("SELECT status FROM controllers WHERE name = 'node1'") != "healthy";
    }, absl::Seconds(60)));
  }
  killed.target = Target::AtMost(1);
  frozen.target = Target::AtMost(4);
  controller.target = Target::AtMost(15);
  Report::Global().Add(killed);
  Report::Global().Add(frozen);
  Report::Global().Add(controller);
}

}  // namespace gantry::bench
