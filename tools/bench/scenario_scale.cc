// scale-workers: one controller with many hollow workers (each its own mTLS connection,
// heartbeating every second with 8 GPUs): the controller's placement decision percentile while
// sessions are placed on them, and the controller's CPU and memory under that load. The other
// half of the scale scenario (10,000 simulated controllers against one API server) is not
// written yet (docs/PERFORMANCE.md).
#include <catch2/catch.hpp>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/support/local_fleet.h"
#include "tools/bench/bench_options.h"
#include "tools/bench/bench_report.h"
#include "tools/bench/fleet_ops.h"
#include "tools/bench/hollow_workers.h"
#include "tools/bench/load.h"

namespace gantry::bench {

namespace {

// CPU seconds (user + system) a process has used.
double CpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> fields = absl::StrSplit(stat.substr(stat.rfind(')') + 2), ' ');
  // After the command: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
  return (std::stod(fields.at(11)) + std::stod(fields.at(12))) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

TEST_CASE("scale-workers", "[bench]") {
  const int workers = Size(1000, 50), sessions = Size(1000, 100);
  testing::LocalFleet fleet;
  ServeControllerMetrics(fleet);
  fleet.StartApi();
  fleet.StartController("node1");
  HollowWorkers hollow({fleet.controller_address(), fleet.pki().dir(), fleet.dir().path(), "hollow", workers, 8});
  REQUIRE(hollow.Start().ok());
  fleet.WaitUntilWorkersOnline(workers);
  pid_t controller = fleet.controller().pid();

  // Idle: heartbeats only, for 10 s (3 with --quick).
  double cpu_before = CpuSeconds(controller);
  absl::Duration idle = Options().quick ? absl::Seconds(3) : absl::Seconds(10);
  absl::SleepFor(idle);
  double idle_cpu = (CpuSeconds(controller) - cpu_before) / absl::ToDoubleSeconds(idle);
  int64_t rss_kib = testing::RssKib(controller);

  // Then placements on top of the heartbeats.
  std::mutex mu;
  std::vector<std::string> ids;
  LoadResult placed = ClosedLoop(sessions, 16, [&](int) {
    v1::Session session;
    if (!fleet.CreateAsAdmin(testing::SleepSpec("1", 1), &session).ok()) return false;
    std::lock_guard<std::mutex> lock(mu);
    ids.push_back(session.id());
    return session.phase() == v1::SESSION_PHASE_RUNNING;
  });
  CHECK(placed.failures == 0);
  Figure decision{"scale-workers", absl::StrCat("placement decision p99, ", workers, " workers"), "us",
                  {ControllerDecisionP99Micros(fleet)}};
  decision.target = Target::AtMost(1000);
  Report::Global().Add(decision);
  Report::Global().Add({"scale-workers", absl::StrCat("controller CPU, heartbeats of ", workers, " workers"), "cores",
                        {idle_cpu}});
  Report::Global().Add({"scale-workers", absl::StrCat("controller RSS with ", workers, " workers"), "MiB",
                        {static_cast<double>(rss_kib) / 1024}});
  DeleteAll(fleet, ids);
}

}  // namespace gantry::bench
