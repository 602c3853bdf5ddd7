// PgPool's bounds on a real PostgreSQL: a statement or lock wait past the bound is cancelled by
// the server, and a call whose server stops answering is cut by the watchdog; each is a clear
// UNAVAILABLE within the bound, and the pool serves the next call.
#include <catch2/catch.hpp>

#include <pqxx/pqxx>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "common/pg_pool.h"
#include "common/pg_prepared.h"
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

namespace gantry {

TEST_CASE("a statement run prepared is prepared once per connection and again on a reopened one", "[pg]") {
  testing::TestDatabase db;
  PgPool pool(db.dsn(), 1);
  static constexpr std::string_view kAddOne = "SELECT $1::int + 1";
  auto add_one = [&](int n, int* out, int* prepared, int* backend) {
    return pool.Run([&](pqxx::connection& c) {
      pqxx::work tx(c);
      *out = ExecPrepared(tx, kAddOne, n)[0][0].as<int>();
      *prepared = tx.exec_params("SELECT count(*) FROM pg_prepared_statements WHERE statement = $1",
                                 std::string(kAddOne))[0][0]
                      .as<int>();
      *backend = tx.exec("SELECT pg_backend_pid()")[0][0].as<int>();
      tx.commit();
      return absl::OkStatus();
    });
  };
  int out = 0, prepared = 0, first_backend = 0, backend = 0;
  REQUIRE(add_one(41, &out, &prepared, &first_backend).ok());
  CHECK(out == 42);
  CHECK(prepared == 1);
  REQUIRE(add_one(1, &out, &prepared, &backend).ok());  // Defined again with the same text: a no-op.
  CHECK(out == 2);
  CHECK(prepared == 1);
  CHECK(backend == first_backend);  // The same connection, the statement not prepared twice.

  // The connection ends under the pool (its backend terminated from outside): the next call
  // finds it lost, the pool reopens it, and the new connection, which has no prepared
  // statements, prepares it again.
  {
    pqxx::connection admin(db.dsn());
    pqxx::nontransaction tx(admin);
    tx.exec_params("SELECT pg_terminate_backend($1)", first_backend);
  }
  REQUIRE(testing::WaitFor([&] {
    return db.Scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = " + std::to_string(first_backend)) == "0";
  }, absl::Seconds(10)));
  CHECK(add_one(2, &out, &prepared, &backend).code() == absl::StatusCode::kUnavailable);
  REQUIRE(add_one(2, &out, &prepared, &backend).ok());
  CHECK(out == 3);
  CHECK(prepared == 1);
  CHECK(backend != first_backend);
}

}  // namespace gantry
