// The migration runner against a real PostgreSQL: applies, records, is idempotent, and lets
// several replicas start at once.
#include "api-server/migration_runner.h"

#include <catch2/catch.hpp>
#include <pqxx/connection>

#include <atomic>
#include <thread>

#include "tests/support/test_env.h"

namespace gantry::api {

TEST_CASE("migrations apply once, are recorded, and a second run is a no-op", "[pg][migrations]") {
  testing::TestDatabase db;
  pqxx::connection c(db.dsn());
  auto first = ApplyMigrations(c, EmbeddedMigrations());
  REQUIRE(first.ok());
  CHECK(first->size() == EmbeddedMigrations().size());
  CHECK(db.Scalar("SELECT count(*) FROM schema_migrations") == std::to_string(first->size()));
  CHECK(db.Scalar("SELECT to_regclass('sessions')::text") == "sessions");
  auto second = ApplyMigrations(c, EmbeddedMigrations());
  REQUIRE(second.ok());
  CHECK(second->empty());
}

TEST_CASE("replicas migrating at once apply each migration exactly once", "[pg][migrations]") {
  testing::TestDatabase db;
  std::atomic<int> applied{0}, failed{0};
  std::vector<std::thread> replicas;
  for (int i = 0; i < 6; ++i) {
    replicas.emplace_back([&] {
      try {
        pqxx::connection c(db.dsn());
        auto r = ApplyMigrations(c, EmbeddedMigrations());
        if (r.ok()) applied += static_cast<int>(r->size()); else ++failed;
      } catch (const std::exception&) {
        ++failed;
      }
    });
  }
  for (auto& t : replicas) t.join();
  CHECK(failed == 0);
  CHECK(applied == static_cast<int>(EmbeddedMigrations().size()));
}

TEST_CASE("a failing migration rolls back and is not recorded", "[pg][migrations]") {
  testing::TestDatabase db;
  pqxx::connection c(db.dsn());
  std::vector<Migration> broken = {{"0001_ok.sql", "CREATE TABLE a (x int);"},
                                   {"0002_bad.sql", "CREATE TABLE b (x int); SELECT nonsense;"}};
  CHECK_THROWS(ApplyMigrations(c, broken));
  pqxx::connection again(db.dsn());
  CHECK(db.Scalar("SELECT string_agg(name, ',') FROM schema_migrations") == "0001_ok.sql");
  CHECK(db.Scalar("SELECT to_regclass('b')::text").empty());
  // The advisory lock was released: a fixed migration applies.
  broken[1].sql = "CREATE TABLE b (x int);";
  auto fixed = ApplyMigrations(again, broken);
  REQUIRE(fixed.ok());
  CHECK(fixed->size() == 1);
}

TEST_CASE("a database migrated by a newer binary is refused", "[pg][migrations]") {
  testing::TestDatabase db;
  pqxx::connection c(db.dsn());
  REQUIRE(ApplyMigrations(c, {{"0001_a.sql", "SELECT 1;"}, {"0002_b.sql", "SELECT 1;"}}).ok());
  auto older = ApplyMigrations(c, {{"0001_a.sql", "SELECT 1;"}});
  CHECK(older.status().code() == absl::StatusCode::kFailedPrecondition);
}

}  // namespace gantry::api
