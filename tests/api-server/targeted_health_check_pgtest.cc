// Which controllers the health check leader calls, on real PostgreSQL with a scripted client:
// every round those whose heartbeats are late or that missed a check, the others in a slow
// sweep; and a late controller that misses one check is unhealthy at once.
#include "api-server/health_checker.h"

#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "tests/api-server/store_fixture.h"

namespace gantry::api {
namespace {

struct Fixture : testing::ManagerFixture {
  PlacementResumer resumer{&controllers, &client, absl::Seconds(1)};
  HealthCheckConfig Config() {
    HealthCheckConfig config;
    config.dsn = db.dsn();
    config.interval = absl::Milliseconds(100);
    config.heartbeat_late = absl::Seconds(10);
    return config;
  }
  // `n` controllers heartbeating on time, at 127.0.0.1:(1000+i).
  void RegisterFresh(int n) {
    for (int i = 0; i < n; ++i) RegisterController(absl::StrCat("fresh", i), 1, absl::StrCat("127.0.0.1:", 1000 + i));
  }
  std::string Status(const std::string& name) {
    return db.Scalar("SELECT status FROM controllers WHERE name = '" + name + "'");
  }
};

TEST_CASE("health checks call late controllers every round and the rest in a sweep, oldest first", "[pg][health]") {
  Fixture f;
  f.RegisterFresh(20);
  f.RegisterController("late", 1, "127.0.0.1:2000");
  f.db.Scalar("UPDATE controllers SET last_heartbeat = now() - interval '1 minute' WHERE name = 'late' RETURNING id");
  HealthCheckConfig config = f.Config();
  // 50 rounds a sweep: a share of one of the 20 a round, and none overdue in the rounds looked
  // at (the first 20, two seconds or more, against a sweep of five).
  config.reachability_sweep = absl::Seconds(5);
  HealthChecker checker(config, &f.pool, &f.sessions, &f.client, &f.resumer);
  checker.Start();
  REQUIRE(gantry::testing::WaitFor([&] { return f.client.health_rounds().size() >= 20; }, absl::Seconds(30)));
  checker.Stop();
  auto rounds = f.client.health_rounds();
  rounds.resize(20);
  std::map<std::string, int> calls;
  for (const auto& round : rounds) {
    CHECK(round.size() == 2);  // The late one, and the sweep's share of those on time.
    CHECK(std::count(round.begin(), round.end(), "127.0.0.1:2000") == 1);
    for (const auto& endpoint : round) ++calls[endpoint];
  }
  // Oldest first: in 20 rounds, each of the 20 on time once.
  CHECK(calls.size() == 21);
  for (int i = 0; i < 20; ++i) {
    INFO(i);
    CHECK(calls[absl::StrCat("127.0.0.1:", 1000 + i)] == 1);
  }
}

TEST_CASE("a controller whose heartbeats are late is unhealthy at its first missed check but one on time is not",
          "[pg][health]") {
  Fixture f;
  f.RegisterController("late", 1, "127.0.0.1:2000");
  f.RegisterController("on-time", 1, "127.0.0.1:2001");
  f.db.Scalar("UPDATE controllers SET last_heartbeat = now() - interval '1 minute' WHERE name = 'late' RETURNING id");
  f.client.FailHealthChecksOf("127.0.0.1:2000");
  f.client.FailHealthChecksOf("127.0.0.1:2001");
  HealthCheckConfig config = f.Config();
  // One round in this test: the next is far off, and both are called in the first.
  config.interval = absl::Minutes(10);
  config.reachability_sweep = config.interval;
  config.unhealthy_after = 3;
  HealthChecker checker(config, &f.pool, &f.sessions, &f.client, &f.resumer);
  checker.Start();
  REQUIRE(gantry::testing::WaitFor([&] { return f.Status("late") == "unhealthy"; }, absl::Seconds(20)));
  REQUIRE(gantry::testing::WaitFor(
      [&] { return f.db.Scalar("SELECT missed_health_checks FROM controllers WHERE name = 'on-time'") == "1"; },
      absl::Seconds(20)));
  CHECK(f.client.health_rounds().size() == 1);
  CHECK(f.Status("on-time") == "healthy");  // One miss of three: it heartbeats, so it is alive.
  checker.Stop();
}

}  // namespace
}  // namespace gantry::api
