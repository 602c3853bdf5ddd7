// Pruning of ended sessions on real PostgreSQL: exactly the ended ones past the retention go,
// with their events, in batches; live and recent ones stay; a row another transaction holds is
// skipped without waiting, and goes at the next pass.
#include "api-server/session_pruner.h"

#include <catch2/catch.hpp>
#include <pqxx/transaction>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "tests/api-server/store_fixture.h"

namespace gantry::api {
namespace {

struct Fixture : testing::StoreFixture {
  // A session in `phase`, ended `ended_ago` ago ('' = not ended), with `events` events.
  std::string Session(const std::string& phase, const std::string& ended_ago, int events = 2) {
    const std::string ended = ended_ago.empty() ? "NULL" : "now() - interval '" + ended_ago + "'";
    std::string id = db.Scalar(absl::StrCat(
        "INSERT INTO sessions (owner, spec, phase, created_at, ended_at) VALUES ('user/alice', '{}', '", phase,
        "', now() - interval '30 days', ", ended, ") RETURNING id"));
    for (int i = 0; i < events; ++i) {
      db.Scalar("INSERT INTO session_events (session_id, to_phase) VALUES ('" + id + "', '" + phase + "') RETURNING id");
    }
    return id;
  }
  bool Exists(const std::string& id) {
    return db.Scalar("SELECT count(*) FROM sessions WHERE id = '" + id + "'") == "1";
  }
  std::string Events() { return db.Scalar("SELECT count(*) FROM session_events"); }
};

SessionPruneConfig WeekInBatchesOf(int batch) {
  SessionPruneConfig config;
  config.retention = absl::Hours(7 * 24);
  config.batch = batch;
  return config;
}

}  // namespace

TEST_CASE("pruning removes exactly the ended sessions past the retention, with their events, in batches", "[pg]") {
  Fixture f;
  std::vector<std::string> old;
  for (int i = 0; i < 5; ++i) old.push_back(f.Session(i % 2 ? "FAILED" : "TERMINATED", "8 days"));
  const std::string recent = f.Session("FAILED", "6 days");
  const std::string running = f.Session("RUNNING", "");
  // Not ended, whatever its timestamp says: only the phase and the end decide.
  const std::string odd = f.Session("HIBERNATED", "9 days");
  SessionPruner pruner(WeekInBatchesOf(2), &f.pool, [] { return true; });

  auto removed = pruner.PruneOnce();
  REQUIRE(removed.ok());
  CHECK(*removed == 5);  // Batches of 2, 2 and 1.
  for (const auto& id : old) CHECK_FALSE(f.Exists(id));
  CHECK(f.Exists(recent));
  CHECK(f.Exists(running));
  CHECK(f.Exists(odd));
  CHECK(f.Events() == "6");  // The three kept sessions' two each.
  auto again = pruner.PruneOnce();
  REQUIRE(again.ok());
  CHECK(*again == 0);
}

TEST_CASE("pruning skips a session another transaction holds, without waiting, and takes it next time", "[pg]") {
  Fixture f;
  const std::string held = f.Session("TERMINATED", "8 days");
  const std::string free = f.Session("TERMINATED", "8 days");
  SessionPruner pruner(WeekInBatchesOf(100), &f.pool, [] { return true; });

  pqxx::connection other(f.db.dsn());
  auto holding = std::make_unique<pqxx::work>(other);
  holding->exec("SELECT 1 FROM sessions WHERE id = '" + held + "' FOR UPDATE");
  const absl::Time start = absl::Now();
  auto removed = pruner.PruneOnce();
  REQUIRE(removed.ok());
  CHECK(absl::Now() - start < absl::Seconds(1));
  CHECK(*removed == 1);
  CHECK(f.Exists(held));
  CHECK_FALSE(f.Exists(free));

  holding->commit();
  removed = pruner.PruneOnce();
  REQUIRE(removed.ok());
  CHECK(*removed == 1);
  CHECK_FALSE(f.Exists(held));
}

TEST_CASE("the pruner runs on the leading replica only, a quarter of the retention apart", "[pg]") {
  Fixture f;
  SessionPruneConfig config = WeekInBatchesOf(100);
  CHECK(SessionPruner(config, &f.pool, [] { return true; }).interval() == absl::Minutes(1));
  config.retention = absl::Seconds(2);
  CHECK(SessionPruner(config, &f.pool, [] { return true; }).interval() == absl::Seconds(1));

  // Ended 3 s ago, past a 2 s retention: only a leading replica removes it.
  const std::string ended = f.Session("TERMINATED", "3 seconds");
  std::atomic<bool> leading{false};
  std::atomic<int> asked{0};
  SessionPruner pruner(config, &f.pool, [&] {
    ++asked;
    return leading.load();
  });
  pruner.Start();
  // Two passes came round while it did not lead: it is still there.
  REQUIRE(gantry::testing::WaitFor([&] { return asked.load() >= 2; }, absl::Seconds(5)));
  CHECK(f.Exists(ended));
  leading = true;
  CHECK(gantry::testing::WaitFor([&] { return !f.Exists(ended); }, absl::Seconds(5)));
  pruner.Stop();
}

}  // namespace gantry::api
