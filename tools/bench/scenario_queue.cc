// queue: the queue at size. N sessions (1 GPU each; 10,000, or 500 --quick) wait PENDING while
// every controller is cordoned; all are uncordoned at once, and the queue's leader places them
// (the API server's defaults: a round every second, 64 looked at a round, another round at once
// while rounds fill) until the fleet's G GPUs are taken. Figures: sessions placed from the
// queue per second (insert to RUNNING stored, PostgreSQL's clock), and the cost of one
// scheduling decision: the ordered read of the queue's head (select_queued_sessions.sql, 64
// rows) with the rest still queued, timed on the same PostgreSQL. The physical baseline for
// the rate: raw PostgreSQL commits, one a session, from one connection, as the dispatcher
// places one session at a time (its reservation commits; RUNNING comes later, batched, on the
// controllers' event route). The place scenario's rate is the other yardstick (docs).
#include <catch2/catch.hpp>

#include <mutex>

#include "absl/strings/str_cat.h"
#include "api-server/session_store.h"
#include "common/pg_pool.h"
#include "tests/support/local_fleet.h"
#include "tools/bench/bench_options.h"
#include "tools/bench/bench_report.h"
#include "tools/bench/hollow_workers.h"
#include "tools/bench/load.h"
#include "tools/bench/raw_commit_ceiling.h"

namespace gantry::bench {

using testing::LocalFleet;

TEST_CASE("queue", "[bench]") {
  const int n = Size(10000, 500);
  LocalFleet fleet;
  fleet.StartApi();
  const int nodes = Size(4, 2), workers_per_node = Size(8, 1), gpus_each = 32;
  const int gpus = nodes * workers_per_node * gpus_each;
  std::vector<std::unique_ptr<HollowWorkers>> hollow;
  for (int c = 0; c < nodes; ++c) {
    fleet.StartController(absl::StrCat("node", c + 1));
    hollow.push_back(std::make_unique<HollowWorkers>(HollowWorkerOptions{
        fleet.controller_address(c), fleet.pki().dir(), fleet.dir().path(), absl::StrCat("hollow", c, "-"),
        workers_per_node, gpus_each}));
    REQUIRE(hollow.back()->Start().ok());
  }
  REQUIRE(testing::WaitFor([&] {
    return fleet.db().Scalar("SELECT coalesce(sum(gpus_total), 0) FROM controllers WHERE status = 'healthy'") ==
           std::to_string(gpus);
  }, absl::Seconds(30)));

  // Queued while nothing can be chosen.
  fleet.db().Scalar("UPDATE controllers SET cordoned = true RETURNING 1");
  std::vector<std::unique_ptr<v1::SessionService::Stub>> stubs;
  for (int c = 0; c < 8; ++c) {
    stubs.push_back(v1::SessionService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops")));
  }
  LoadResult queued = ClosedLoop(n, 64, [&](int i) {
    v1::CreateSessionRequest request;
    *request.mutable_spec() = testing::SleepSpec("1", 1);
    request.set_queue(true);
    v1::Session session;
    grpc::ClientContext ctx;
    return stubs[i % stubs.size()]->CreateSession(&ctx, request, &session).ok() &&
           session.phase() == v1::SESSION_PHASE_PENDING;
  });
  REQUIRE(queued.failures == 0);

  // All room at once.
  const double start = std::stod(fleet.db().Scalar(
      "WITH u AS (UPDATE controllers SET cordoned = false RETURNING 1) SELECT extract(epoch FROM now()) FROM u LIMIT 1"));
  const int placed_target = std::min(gpus, n);
  REQUIRE(testing::WaitFor([&] {
    return std::stoi(fleet.db().Scalar("SELECT count(*) FROM sessions WHERE phase = 'RUNNING'")) >= placed_target;
  }, absl::Seconds(300)));
  const double last = std::stod(fleet.db().Scalar(
      "SELECT extract(epoch FROM max(updated_at)) FROM sessions WHERE phase = 'RUNNING'"));
  Figure rate{"queue", "sessions placed from the queue per second (RUNNING stored)", "1/s", {placed_target / (last - start)}};

  // One decision: the queue's ordered head, with the rest still queued.
  PgPool pool(fleet.db().dsn(), 1);
  api::SessionStore sessions(&pool);
  std::vector<double> read_ms;
  for (int i = 0; i < 21; ++i) {
    const absl::Time t0 = absl::Now();
    auto head = sessions.Queued(64, api::kFairShareWindow);
    read_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    REQUIRE(head.ok());
    REQUIRE(head->size() == static_cast<size_t>(std::min(64, n - placed_target)));
  }
  Figure decision{"queue", "scheduling decision: the queue's ordered head (64 of the rest)", "ms", {Median(read_ms)}};

  // The physical baseline: one connection's commits, one a session.
  LoadResult raw = RawCommitCeiling(fleet.db().dsn(), 1, Size(2000, 200), 1);
  CHECK(raw.failures == 0);
  rate.baseline_rounds.push_back(raw.latency_ms.size() / raw.seconds);
  Report::Global().Add(rate);
  Report::Global().Add(decision);
  Report::Global().Note("queue", absl::StrCat(n, " sessions queued by 64 clients (", queued.latency_ms.size() / queued.seconds,
                                              " creates/s), ", nodes, " controllers with ", workers_per_node,
                                              " hollow workers of ", gpus_each, " GPUs: ", placed_target,
                                              " placed once uncordoned; ", n - placed_target,
                                              " still queued while the decision is timed. Baseline: raw commits "
                                              "from one connection, one a session."));
}

}  // namespace gantry::bench
