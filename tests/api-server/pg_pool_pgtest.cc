// PgPool's bounds on a real PostgreSQL: a statement or lock wait past the bound is cancelled by
// the server, and a call whose server stops answering is cut by the watchdog; each is a clear
// UNAVAILABLE within the bound, and the pool serves the next call.
#include <catch2/catch.hpp>

#include <pqxx/pqxx>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "common/pg_pool.h"
#include "tests/support/test_env.h"

namespace gantry {
namespace {

absl::Status Exec(PgPool& pool, const std::string& sql) {
  return pool.Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    tx.exec(sql);
    return absl::OkStatus();
  });
}

}  // namespace

TEST_CASE("a statement past the bound is cancelled by the server: UNAVAILABLE, and the pool goes on",
          "[pg][pg-bounds]") {
  testing::TestDatabase db;
  PgPool pool(db.dsn(), 2, {absl::Seconds(2)});
  const absl::Time start = absl::Now();
  absl::Status s = Exec(pool, "SELECT pg_sleep(10)");
  const absl::Duration took = absl::Now() - start;
  INFO(s.ToString() << " after " << absl::FormatDuration(took));
  CHECK(s.code() == absl::StatusCode::kUnavailable);
  CHECK(absl::StrContains(s.message(), "did not answer in time"));
  CHECK(took < absl::Seconds(3));
  CHECK(Exec(pool, "SELECT 1").ok());
}

TEST_CASE("a lock wait past the bound is UNAVAILABLE", "[pg][pg-bounds]") {
  testing::TestDatabase db;
  pqxx::connection holder(db.dsn());
  pqxx::work hold(holder);
  hold.exec("SELECT pg_advisory_xact_lock(4242)");
  PgPool pool(db.dsn(), 1, {absl::Seconds(2)});
  absl::Status s = pool.Run([](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec("SELECT pg_advisory_xact_lock(4242)");
    return absl::OkStatus();
  });
  INFO(s.ToString());
  CHECK(s.code() == absl::StatusCode::kUnavailable);
  CHECK(absl::StrContains(s.message(), "did not answer in time"));
}

TEST_CASE("a call whose server stops answering is cut at the bound by the watchdog", "[pg][pg-bounds]") {
  testing::TestDatabase db;
  PgPool pool(db.dsn(), 1, {absl::Seconds(2)});
  // The server's own bound lifted, as a frozen server would never apply it.
  const absl::Time start = absl::Now();
  absl::Status s = pool.Run([](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    tx.exec("SET statement_timeout = 0");
    tx.exec("SELECT pg_sleep(20)");
    return absl::OkStatus();
  });
  const absl::Duration took = absl::Now() - start;
  INFO(s.ToString() << " after " << absl::FormatDuration(took));
  CHECK(s.code() == absl::StatusCode::kUnavailable);
  CHECK(absl::StrContains(s.message(), "the database is not answering: no reply within 2s"));
  CHECK(took >= absl::Seconds(2));
  CHECK(took < absl::Seconds(3));
  // The cut connection is not reused: the next call gets a fresh one, with the bound again.
  CHECK(Exec(pool, "SELECT 1").ok());
  CHECK(Exec(pool, "SELECT pg_sleep(10)").code() == absl::StatusCode::kUnavailable);
}

}  // namespace gantry
