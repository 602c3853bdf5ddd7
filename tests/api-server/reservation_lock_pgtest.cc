// What a reservation in flight holds back, against a real PostgreSQL. Replicas reserving GPUs on
// one controller take turns, and so does a cordon; the controller's heartbeats and health check
// results do not wait for them. (When they did, a burst of 200 creates queued the heartbeats for
// longer than their freshness, and the controller dropped out of placement mid-burst.)
#include <catch2/catch.hpp>
#include <pqxx/nontransaction>
#include <pqxx/transaction>

#include <chrono>
#include <future>
#include <memory>
#include <string>

#include "api-server/admin_store.h"
#include "api-server/sql_queries.h"
#include "tests/api-server/store_fixture.h"

namespace gantry::api {
namespace {

// A reservation begun and not yet committed, as SessionStore::Create holds it: the controller's
// reservation lock taken, its room read, and the session row inserted (whose foreign key holds a
// key-share lock on the controller's row). Rolled back when destroyed.
class OpenReservation {
 public:
  OpenReservation(const std::string& dsn, const std::string& controller) : conn_(dsn), tx_(conn_) {
    tx_.exec_params(std::string(sql::kLockControllerForReservation), controller);
    REQUIRE_FALSE(tx_.exec_params(std::string(sql::kSelectControllerRoom), controller).empty());
    tx_.exec_params(std::string(sql::kInsertSession), "user/alice", "", "", "{}", "{}", 1, "SCHEDULED", controller,
                    "placing", "user/alice", "", 0, 0);
  }
  void Commit() { tx_.commit(); }

 private:
  pqxx::connection conn_;
  pqxx::work tx_;
};

// Waits (a bounded wait on the outcome, not a sleep) for `done`; true if it finished. Each test
// declares its futures before its OpenReservation, so a failed wait rolls the reservation back
// before the futures' destructors wait for what it holds up.
template <typename T>
bool Finishes(std::future<T>& done) {
  return done.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
}

}  // namespace

TEST_CASE("a reservation in flight holds back neither its controller's heartbeats nor its health check results",
          "[pg][reservation]") {
  testing::StoreFixture f;
  const std::string controller = f.RegisterController("c1", 4);
  std::future<absl::Status> heartbeat, miss, ok;
  OpenReservation open(f.db.dsn(), controller);

  v1::HeartbeatRequest beat;
  beat.set_controller_id(controller);
  beat.set_controller_token("token-c1");
  beat.mutable_capacity()->set_gpus_total(4);
  heartbeat = std::async(std::launch::async, [&] {
    return f.controllers.Heartbeat(beat, "c1", absl::Seconds(1), absl::Seconds(30)).status();
  });
  REQUIRE(Finishes(heartbeat));
  CHECK(heartbeat.get().ok());

  miss = std::async(std::launch::async, [&] {
    return f.pool.Run([&](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      tx.exec_params(std::string(sql::kRecordHealthCheckMiss), controller, 3, 6, 30.0, std::string("no answer"),
                     /*heartbeats_late=*/false);
      return absl::OkStatus();
    });
  });
  REQUIRE(Finishes(miss));
  CHECK(miss.get().ok());
  // As the health checker writes a controller's answer.
  const std::string answered =
      "[" + AnsweredRowJson(controller, beat.capacity(), v1::ControllerLoad()) + "]";
  ok = std::async(std::launch::async, [&] {
    return f.pool.Run([&](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      tx.exec_params(std::string(sql::kRecordHealthChecksOk), answered);
      return absl::OkStatus();
    });
  });
  REQUIRE(Finishes(ok));
  absl::Status recorded = ok.get();
  INFO(recorded.ToString());
  CHECK(recorded.ok());
  CHECK(f.db.Scalar("SELECT missed_health_checks FROM controllers") == "0");
}

TEST_CASE("a cordon waits for the reservations in flight on its controller, and none lands after it",
          "[pg][reservation]") {
  testing::StoreFixture f;
  const std::string controller = f.RegisterController("c1", 4);
  AdminStore admin(&f.pool, absl::Seconds(15));
  std::future<absl::Status> cordon;
  auto open = std::make_unique<OpenReservation>(f.db.dsn(), controller);

  cordon = std::async(std::launch::async, [&] { return admin.SetCordoned(controller, true); });
  // The cordon queues on the reservation's lock (a condition PostgreSQL reports), ...
  REQUIRE(gantry::testing::WaitFor([&] {
    return f.db.Scalar("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                       "AND wait_event = 'advisory' AND query LIKE '%cordoned%'") == "1";
  }, absl::Seconds(10)));
  // ... and returns once it commits: the reserved session counts, and no reservation follows.
  open->Commit();
  REQUIRE(Finishes(cordon));
  CHECK(cordon.get().ok());
  CHECK(f.db.Scalar("SELECT count(*) FROM sessions") == "1");
  v1::SessionSpec spec;
  spec.add_command("sleep");
  spec.mutable_resources()->mutable_gpus()->set_count(1);
  Reservation on_c1{controller, "after the cordon"};
  CHECK(f.sessions.Create("user/alice", "", "", spec, &on_c1).status().code() ==
        absl::StatusCode::kResourceExhausted);
  CHECK(f.db.Scalar("SELECT count(*) FROM sessions") == "1");
}

}  // namespace gantry::api
