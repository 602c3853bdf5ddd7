// spawn: one real worker starting real long-lived processes (`sleep`), through gantry-api and the
// controller, 16 creates at a time: sessions per second to RUNNING. Baseline: posix_spawn of the
// same command in a loop, keeping the children alive: the machine's spawn ceiling. Then an
// open-loop run at half the ceiling's rate for the time-to-RUNNING percentiles.
#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "tests/support/local_fleet.h"
#include "tools/bench/bench_options.h"
#include "tools/bench/bench_report.h"
#include "tools/bench/fleet_ops.h"
#include "tools/bench/load.h"
#include "tools/bench/spawn_ceiling.h"

namespace gantry::bench {
namespace {

using testing::LocalFleet;

}  // namespace

TEST_CASE("spawn", "[bench]") {
  const int n = Size(300, 30);
  LocalFleet fleet;
  fleet.StartSingleNode("0", 0);
  // A few long-lived connections, as a real client keeps: a channel per create would measure the
  // client's and gantry-api's TLS handshakes (and reading the key files) with every session.
  constexpr int kChannels = 4;
  std::vector<std::unique_ptr<v1::SessionService::Stub>> stubs;
  for (int c = 0; c < kChannels; ++c) stubs.push_back(fleet.AdminSessions());
  auto create = [&](std::vector<std::string>* ids, std::mutex* mu) {
    return [&, ids, mu](int i) {
      v1::CreateSessionRequest request;
      request.set_wait_for_running(true);
      *request.mutable_spec() = testing::SleepSpec(absl::StrCat(90000 + i), 0);
      v1::Session session;
      grpc::ClientContext ctx;
      grpc::Status s = stubs[static_cast<size_t>(i) % stubs.size()]->CreateSession(&ctx, request, &session);
      if (!s.ok() || session.phase() != v1::SESSION_PHASE_RUNNING) return false;
      std::lock_guard<std::mutex> lock(*mu);
      ids->push_back(session.id());
      return true;
    };
  };
  {
    std::vector<std::string> ids;
    std::mutex mu;
    ClosedLoop(n / 10, 16, create(&ids, &mu));  // warm-up
    DeleteAll(fleet, ids);
    WaitForHomesRemoved(fleet);
  }
  Figure rate{"spawn", "real sessions to RUNNING per second", "1/s"};
  Figure p99{"spawn", "time to RUNNING p99 at half the ceiling", "ms"};
  Figure p50{"spawn", "time to RUNNING p50 at half the ceiling", "ms"};
  for (int round = 0; round < Options().rounds; ++round) {
    std::mutex mu;
    std::vector<std::string> ids;
    LoadResult started = ClosedLoop(n, 16, create(&ids, &mu));
    CHECK(started.failures == 0);
    DeleteAll(fleet, ids);
    WaitForHomesRemoved(fleet);
    double ceiling = SpawnCeiling(n);
    rate.rounds.push_back(started.latency_ms.size() / started.seconds);
    rate.baseline_rounds.push_back(ceiling);

    ids.clear();
    LoadResult paced = OpenLoop(n, ceiling / 2, 64, create(&ids, &mu));
    CHECK(paced.failures == 0);
    DeleteAll(fleet, ids);
    WaitForHomesRemoved(fleet);
    Latencies l = Summarise(&paced.latency_ms);
    p50.rounds.push_back(l.p50);
    p99.rounds.push_back(l.p99);
  }
  rate.target = Target::AtLeast(0.8, true);
  p99.target = Target::AtMost(50);
  Report::Global().Add(rate);
  Report::Global().Add(p50);
  Report::Global().Add(p99);
}

}  // namespace gantry::bench
