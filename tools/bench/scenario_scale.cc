// The scale scenarios, one per tier.
// scale-workers: one controller with many hollow workers (each its own mTLS connection,
// heartbeating every second with 8 GPUs): the controller's placement decision percentile while
// sessions are placed on them, and the controller's CPU and memory under that load.
// scale-controllers: one API server with many hollow controllers (each its own certificate,
// mTLS connection and loopback address), heartbeating every 5 s and health-checked every 5 s
// as in production, while sessions are created on them: heartbeat lag, controller selection
// percentile, and the API server's CPU and memory.
#include <catch2/catch.hpp>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/support/local_fleet.h"
#include "tools/bench/bench_options.h"
#include "tools/bench/bench_report.h"
#include "tools/bench/core_pinning.h"
#include "tools/bench/fleet_ops.h"
#include "tools/bench/hollow_controllers.h"
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
  // The controller on a core of its own; the hollow workers and the API server on the rest.
  PinnedApart apart(fleet.controller().pid(), {fleet.api().pid()});
  pid_t controller = fleet.controller().pid();
  const int idle_threads = testing::ThreadCount(controller);
  HollowWorkers hollow({fleet.controller_address(), fleet.pki().dir(), fleet.dir().path(), "hollow", workers, 8});
  REQUIRE(hollow.Start().ok());
  fleet.WaitUntilWorkersOnline(workers);
  // Each worker's Connect stream is a reactor: connected workers park no thread.
  Figure threads{"scale-workers", absl::StrCat("controller threads with ", workers, " workers connected, over idle"),
                 "threads", {static_cast<double>(testing::ThreadCount(controller) - idle_threads)}};
  threads.target = Target::AtMost(8);
  Report::Global().Add(threads);

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
  const ControllerPlacementP99 placement = ControllerPlacementP99Micros(fleet);
  // PostgreSQL is not pinned: it may still take the controller's core.
  const std::string where = apart.pinned() ? ", the controller on a core of its own" : ", every process on one core";
  Figure decision{"scale-workers", absl::StrCat("placement decision p99, ", workers, " workers", where), "us",
                  {placement.decision_us}};
  decision.target = Target::AtMost(50);
  Report::Global().Add(decision);
  Report::Global().Add({"scale-workers", absl::StrCat("placement decision p50, ", workers, " workers", where), "us",
                        {placement.decision_p50_us}});
  Report::Global().Add({"scale-workers", absl::StrCat("wait for the fleet lock p99, ", workers, " workers", where), "us",
                        {placement.lock_wait_us}});
  Figure choice{"scale-workers",
                absl::StrCat("placement decision including the lock wait p99, ", workers, " workers", where),
                "us", {placement.choice_us}};
  choice.target = Target::AtMost(1000);
  Report::Global().Add(choice);
  Report::Global().Add({"scale-workers", absl::StrCat("controller CPU, heartbeats of ", workers, " workers"), "cores",
                        {idle_cpu}});
  Report::Global().Add({"scale-workers", absl::StrCat("controller RSS with ", workers, " workers"), "MiB",
                        {static_cast<double>(rss_kib) / 1024}});
  DeleteAll(fleet, ids);
}

TEST_CASE("scale-controllers", "[bench]") {
  // GANTRY_BENCH_CONTROLLERS: another fleet size, to see how the figures grow with it.
  const char* asked = std::getenv("GANTRY_BENCH_CONTROLLERS");
  const int controllers = asked != nullptr ? std::atoi(asked) : Size(10000, 200);
  const absl::Duration interval = absl::Seconds(5);
  const absl::Duration measured = Options().quick ? absl::Seconds(10) : absl::Seconds(60);
  const double creates_per_second = 10;
  // Two connections per controller (its heartbeats in, the health checks out) in gantry-api
  // and in this process, each under RLIMIT_NOFILE (gantry-api inherits it). Where the hard
  // limit is too low for that, controllers share addresses, and the API server has fewer
  // connections out than it would in a real fleet: the table says so.
  struct rlimit files;
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);
  const int spare_fds = 2000;  // PostgreSQL, metrics, logs, the creates' channel
  const char* shared = std::getenv("GANTRY_BENCH_ENDPOINTS");  // fewer, to see what they cost
  const int endpoints = static_cast<int>(std::clamp<int64_t>(
      std::min<int64_t>(static_cast<int64_t>(files.rlim_cur) - controllers - spare_fds,
                        shared != nullptr ? std::atoi(shared) : controllers),
      1, controllers));
  testing::LocalFleet fleet;
  // Production's intervals, not the test suite's quick ones.
  fleet.api_env["GANTRY_CONTROLLER_HEARTBEAT_INTERVAL"] = "5s";
  fleet.api_env["GANTRY_HEALTH_CHECK_INTERVAL"] = "5s";
  fleet.api_env["GANTRY_HEALTH_CHECK_TIMEOUT"] = "2s";
  fleet.api_env["GANTRY_METRICS_LISTEN"] = "127.0.0.1:0";
  fleet.api_env["GANTRY_METRICS_PORT_FILE"] = fleet.dir().Sub("api-metrics.port");
  fleet.StartApi();
  const pid_t api = fleet.api().pid();
  const int64_t idle_rss_kib = testing::RssKib(api);

  HollowControllers hollow({fleet.api_address(), testing::kJoinToken, fleet.pki().dir(), fleet.dir().path(),
                            fleet.db().dsn(), "hollow-controller-", controllers, 8, endpoints});
  const absl::Time registering = absl::Now();
  auto started = hollow.Start();
  INFO(started.ToString());
  REQUIRE(started.ok());
  const double register_seconds = absl::ToDoubleSeconds(absl::Now() - registering);
  std::fprintf(stderr, "scale-controllers: %d registered in %.1f s; heartbeating\n", controllers, register_seconds);
  hollow.StartHeartbeats(interval);
  absl::SleepFor(interval * 2);  // Warm-up: every controller beats and is checked twice.
  if (!Options().quick) {
    // A fleet does not grow from nothing to 10,000 controllers in seconds, as this one did:
    // measure it as it runs once autovacuum has analyzed the grown table (within a minute of
    // the growth, by default), so that the planner knows the controllers are many.
    // Asked once a second, not every 20 ms: each question is a new connection, a PostgreSQL
    // backend forked on the machine being measured.
    CHECK(testing::WaitFor([&] {
      return fleet.db().Scalar("SELECT last_autoanalyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'controllers'") == "t";
    }, absl::Minutes(3), absl::Seconds(1)));
  }
  hollow.TakeLagsMs();
  hollow.TakeFailures();
  const int64_t checks_before = hollow.health_checks();

  // Sessions created (and deleted again) all along: controller selection among them all.
  std::atomic<bool> sampling{true};
  std::vector<double> stalest_s;
  std::thread sampler([&] {
    while (sampling) {
      stalest_s.push_back(std::stod(fleet.db().Scalar(
          "SELECT EXTRACT(EPOCH FROM now() - min(last_heartbeat)) FROM controllers WHERE type = 'hollow'")));
      absl::SleepFor(absl::Seconds(1));
    }
  });
  const double cpu_before = CpuSeconds(api);
  const absl::Time began = absl::Now();
  auto stub = fleet.AdminSessions();
  const int creates = static_cast<int>(creates_per_second * absl::ToDoubleSeconds(measured));
  LoadResult created = OpenLoop(creates, creates_per_second, 8, [&](int) {
    v1::Session session;
    if (!fleet.CreateAsAdmin(testing::SleepSpec("1", 1), &session).ok()) return false;
    v1::DeleteSessionRequest request;
    request.set_id(session.id());
    grpc::ClientContext ctx;
    v1::Session deleted;
    return stub->DeleteSession(&ctx, request, &deleted).ok() && session.phase() == v1::SESSION_PHASE_RUNNING;
  });
  const double elapsed = absl::ToDoubleSeconds(absl::Now() - began);
  std::fprintf(stderr, "scale-controllers: %d creates done in %.1f s\n", creates, elapsed);
  const double api_cores = (CpuSeconds(api) - cpu_before) / elapsed;
  const int64_t rss_kib = testing::RssKib(api);
  const double checks_per_second = static_cast<double>(hollow.health_checks() - checks_before) / elapsed;
  sampling = false;
  sampler.join();
  std::vector<double> lags = hollow.TakeLagsMs();
  const int64_t failed_beats = hollow.TakeFailures();
  hollow.StopHeartbeats();

  CHECK(created.failures == 0);
  CHECK(failed_beats == 0);
  REQUIRE(!lags.empty());
  const std::string of = absl::StrCat(controllers, " controllers");
  if (endpoints < controllers) {
    Report::Global().Note("scale-controllers", absl::StrCat(controllers, " controllers shared ", endpoints,
                                                            " addresses: the file descriptor limit here is ",
                                                            files.rlim_cur, " and cannot be raised"));
  }
  const Latencies lag = Summarise(&lags);
  Figure lag_p99{"scale-controllers", absl::StrCat("heartbeat lag (due to stored) p99, ", of), "ms", {lag.p99}};
  lag_p99.target = Target::AtMost(absl::ToDoubleMilliseconds(interval));
  Report::Global().Add(lag_p99);
  Figure lag_max{"scale-controllers", absl::StrCat("heartbeat lag max, ", of), "ms", {lag.max}};
  lag_max.target = Target::AtMost(absl::ToDoubleMilliseconds(interval));
  Report::Global().Add(lag_max);
  Report::Global().Add({"scale-controllers", absl::StrCat("heartbeats stored per second, ", of), "/s",
                        {static_cast<double>(lag.count) / elapsed}});
  Report::Global().Add({"scale-controllers", "oldest heartbeat in PostgreSQL, worst sample", "s",
                        {*std::max_element(stalest_s.begin(), stalest_s.end())}});
  Report::Global().Add({"scale-controllers", absl::StrCat("health checks answered per second, ", of), "/s",
                        {checks_per_second}});
  int port = testing::WaitForPortFile(fleet.dir().Sub("api-metrics.port"), absl::Seconds(5));
  REQUIRE(port > 0);
  Figure selection{"scale-controllers", absl::StrCat("controller selection p99, ", of), "us",
                   {HistogramP99Micros(testing::ScrapeMetrics(fleet.pki().ca(), port),
                                       "gantry_controller_selection_seconds", "")}};
  selection.target = Target::AtMost(5000);
  Report::Global().Add(selection);
  Report::Global().Add({"scale-controllers", absl::StrCat("create to RUNNING, then delete, p99 at ", creates_per_second, "/s, ", of),
                        "ms", {Summarise(&created.latency_ms).p99}});
  Report::Global().Add({"scale-controllers", absl::StrCat("gantry-api CPU, ", of), "cores", {api_cores}});
  Report::Global().Add({"scale-controllers", absl::StrCat("gantry-api RSS growth with ", of), "MiB",
                        {static_cast<double>(rss_kib - idle_rss_kib) / 1024}});
  Report::Global().Add({"scale-controllers", absl::StrCat("registering ", of, ", 64 at a time"), "s", {register_seconds}});
}

}  // namespace gantry::bench
