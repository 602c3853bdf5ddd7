// Reservation batches against a real PostgreSQL: creates that reserve GPUs on one controller
// while its reservation lock is taken are written together next, in one transaction and one
// commit, on one connection; the room goes first come first served, a refusal or a reused
// request_id writes nothing and fails no one else, and a create still queued at its deadline is
// UNAVAILABLE with nothing written. (One transaction each queued 200 creates through two
// replicas past the database's statement timeout under ASan.)
#include <catch2/catch.hpp>
#include <pqxx/connection>
#include <pqxx/transaction>

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "api-server/sql_queries.h"
#include "tests/api-server/store_fixture.h"
#include "tests/support/client_threads.h"

namespace gantry::api {
namespace {

using testing::GpuSpec;

// The controller's reservation lock, held as another replica's reservation holds it, until
// Release (or destruction).
class HeldReservationLock {
 public:
  HeldReservationLock(const std::string& dsn, const std::string& controller) : conn_(dsn), tx_(conn_) {
    tx_.exec_params(std::string(sql::kLockControllerForReservation), controller);
  }
  void Release() { tx_.abort(); }

 private:
  pqxx::connection conn_;
  pqxx::work tx_;
};

// Backends of this database waiting for an advisory lock.
int AdvisoryLockWaiters(gantry::testing::TestDatabase& db) {
  return std::stoi(db.Scalar(
      "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
      "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"));
}

struct Outcomes {
  std::mutex mu;
  std::map<absl::StatusCode, int> by_code;
  std::vector<std::string> messages;  // Of the refusals.
};

// A controller with `gpus` GPUs whose reservation lock another replica holds, and creates on it
// by alice, each on a thread of its own. Members in this order: a failed REQUIRE releases the
// lock first, then joins the creates.
struct HeldController : testing::StoreFixture {
  explicit HeldController(int gpus) : controller(RegisterController("c1", gpus)), held(db.dsn(), controller) {}

  // The create that becomes this API server's writer for the controller: it waits in
  // PostgreSQL for the lock, and what comes next queues behind it here.
  void StartWriter(const std::string& request_id, Outcomes* out) {
    StartCreate(request_id, out);
    REQUIRE(gantry::testing::WaitFor([&] { return AdvisoryLockWaiters(db) == 1; }, absl::Seconds(10)));
  }

  // `count` creates, request ids "<tag>-<i>", one after another: each has joined the queue
  // behind the writer before the next starts.
  void QueueCreates(int count, const std::string& tag, Outcomes* out) {
    for (int i = 0; i < count; ++i) {
      const size_t queued_before = sessions.reservations_queued();
      StartCreate(absl::StrCat(tag, "-", i), out);
      REQUIRE(gantry::testing::WaitFor([&] { return sessions.reservations_queued() == queued_before + 1; },
                                       absl::Seconds(10)));
    }
  }

  // Lets the other replica's reservation go, and waits for every create to be answered.
  void ReleaseAndJoin() {
    held.Release();
    threads.Join();
  }

  const std::string controller;
  gantry::testing::ClientThreads threads;
  HeldReservationLock held;

 private:
  void StartCreate(const std::string& request_id, Outcomes* out) {
    threads.Start([this, request_id, out] {
      Reservation on{controller, "batch"};
      auto s = sessions.Create("user/alice", request_id, "", GpuSpec(1), &on);
      std::lock_guard<std::mutex> lock(out->mu);
      ++out->by_code[s.status().code()];
      if (!s.ok()) out->messages.emplace_back(s.status().message());
    });
  }
};

}  // namespace

TEST_CASE("creates queued behind a controller's reservation lock commit together and get its room in arrival order",
          "[pg][reservation]") {
  HeldController f(30);
  Outcomes out, first;
  f.StartWriter("first", &first);
  // The next 40 wait in the API server, not on a database connection each.
  f.QueueCreates(40, "r", &out);
  CHECK(AdvisoryLockWaiters(f.db) == 1);
  f.ReleaseAndJoin();
  CHECK(first.by_code[absl::StatusCode::kOk] == 1);
  // 30 GPUs: the first and the 29 oldest of the rest fit, the last 11 are refused.
  CHECK(out.by_code[absl::StatusCode::kOk] == 29);
  CHECK(out.by_code[absl::StatusCode::kResourceExhausted] == 11);
  CHECK(f.db.Scalar("SELECT count(*) FROM sessions WHERE request_id IN ('r-29', 'r-30', 'r-39')") == "0");
  CHECK(f.db.Scalar("SELECT count(*) FROM sessions WHERE request_id = 'r-28'") == "1");
  for (const auto& m : out.messages) CHECK(m.find("has 0 of its 30 GPU(s) unreserved") != std::string::npos);
  // Two transactions in all (sessions inserted in one share its start time): the first's, and
  // one for the 40 queued behind it.
  CHECK(f.db.Scalar("SELECT count(DISTINCT created_at) FROM sessions") == "2");
  // Nothing written for the refused; each placed one's events in order; the controller's count
  // of placements moved once per session.
  CHECK(f.db.Scalar("SELECT count(*) FROM sessions") == "30");
  CHECK(f.db.Scalar("SELECT count(*) FROM session_events") == "60");
  CHECK(f.db.Scalar("SELECT count(*) FROM session_events a JOIN session_events b ON a.session_id = b.session_id "
                    "WHERE a.to_phase = 'PENDING' AND b.to_phase = 'SCHEDULED' AND a.id < b.id") == "30");
  CHECK(f.db.Scalar("SELECT active_sessions FROM controllers WHERE id = '" + f.controller + "'") == "30");
}

TEST_CASE("a request_id used twice in one reservation batch places one session and fails no other",
          "[pg][reservation]") {
  HeldController f(8);
  Outcomes out;
  f.StartWriter("lead", &out);
  // Behind the writer, in one batch: "same-0" twice (as retries of one create would come), with
  // another create between them.
  for (const std::string tag : {"same", "other", "same"}) f.QueueCreates(1, tag, &out);
  f.ReleaseAndJoin();
  CHECK(out.by_code[absl::StatusCode::kOk] == 3);
  CHECK(out.by_code[absl::StatusCode::kAlreadyExists] == 1);
  CHECK(f.db.Scalar("SELECT count(*) FROM sessions") == "3");
  CHECK(f.db.Scalar("SELECT count(*) FROM sessions WHERE request_id = 'same-0'") == "1");
  CHECK(f.db.Scalar("SELECT count(*) FROM session_events") == "6");
}

TEST_CASE("a create still queued for its reservation at its deadline is UNAVAILABLE and writes nothing",
          "[pg][reservation]") {
  HeldController f(8);
  Outcomes lead;
  f.StartWriter("lead", &lead);
  const absl::Time start = absl::Now();
  absl::Status late = absl::InternalError("not run");
  {
    DbDeadlineScope deadline(start + absl::Milliseconds(500));
    Reservation on{f.controller, "batch"};
    late = f.sessions.Create("user/alice", "late", "", GpuSpec(1), &on).status();
  }
  const absl::Duration waited = absl::Now() - start;
  CHECK(f.sessions.reservations_queued() == 0);
  f.ReleaseAndJoin();
  CHECK(late.code() == absl::StatusCode::kUnavailable);
  CHECK(std::string(late.message()).find("nothing was written") != std::string::npos);
  CHECK(waited >= absl::Milliseconds(500));
  CHECK(waited < absl::Seconds(3));
  CHECK(lead.by_code[absl::StatusCode::kOk] == 1);
  CHECK(f.db.Scalar("SELECT count(*) FROM sessions WHERE request_id = 'late'") == "0");
  CHECK(f.db.Scalar("SELECT count(*) FROM sessions") == "1");
}

}  // namespace gantry::api
