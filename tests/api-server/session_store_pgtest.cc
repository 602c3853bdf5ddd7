// SessionStore against a real PostgreSQL.
#include "api-server/session_store.h"

#include <catch2/catch.hpp>
#include <pqxx/connection>

#include <algorithm>
#include <atomic>
#include <thread>

#include "tests/api-server/store_fixture.h"

namespace gantry::api {
namespace {

struct Fixture : testing::StoreFixture {
  SessionStore& store = sessions;
  v1::SessionSpec Spec() {
    v1::SessionSpec spec;
    spec.add_command("sleep");
    spec.add_command("60");
    (*spec.mutable_labels())["team"] = "vision";
    return spec;
  }
};

PhaseChange To(v1::SessionPhase phase, const std::string& message = "") {
  PhaseChange c;
  c.phase = phase;
  c.message = message;
  return c;
}

}  // namespace

TEST_CASE("a created session is PENDING with its first event and reads back whole", "[pg][sessions]") {
  Fixture f;
  auto s = f.store.Create("user/alice", "req-1", "", f.Spec());
  REQUIRE(s.ok());
  CHECK(IsUuid(s->id()));
  CHECK(s->phase() == v1::SESSION_PHASE_PENDING);
  CHECK(s->version() == 1);
  auto read = f.store.Get(s->id());
  REQUIRE(read.ok());
  CHECK(read->spec().command(1) == "60");
  CHECK(read->request_id() == "req-1");
  CHECK(f.db.Scalar("SELECT count(*) FROM session_events WHERE session_id = '" + s->id() + "'") == "1");
}

TEST_CASE("request_id is unique per owner, not globally", "[pg][sessions]") {
  Fixture f;
  REQUIRE(f.store.Create("user/alice", "same", "", f.Spec()).ok());
  CHECK(f.store.Create("user/alice", "same", "", f.Spec()).status().code() ==
        absl::StatusCode::kAlreadyExists);
  CHECK(f.store.Create("user/bob", "same", "", f.Spec()).ok());
  CHECK(f.store.Create("user/alice", "", "", f.Spec()).ok());
  CHECK(f.store.Create("user/alice", "", "", f.Spec()).ok());  // No key: no uniqueness.
  auto found = f.store.FindByRequestId("user/alice", "same");
  REQUIRE(found.ok());
  CHECK(found->has_value());
}

TEST_CASE("transitions follow the state machine and record every change in order", "[pg][sessions]") {
  Fixture f;
  auto s = f.store.Create("user/alice", "", "", f.Spec());
  REQUIRE(s.ok());
  PhaseChange placed = To(v1::SESSION_PHASE_RUNNING, "started");
  placed.worker_id = "node1/w1";
  placed.gpu_uuids = std::vector<std::string>{"GPU-1", "GPU-2"};
  auto running = f.store.Transition(s->id(), placed);
  REQUIRE(running.ok());
  CHECK(running->version() == 2);
  CHECK(running->worker_id() == "node1/w1");
  CHECK(running->gpu_uuids_size() == 2);
  auto illegal = f.store.Transition(s->id(), To(v1::SESSION_PHASE_STARTING));
  CHECK(illegal.status().code() == absl::StatusCode::kFailedPrecondition);
  REQUIRE(f.store.Transition(s->id(), To(v1::SESSION_PHASE_TERMINATED, "bye")).ok());
  CHECK(f.store.Transition(s->id(), To(v1::SESSION_PHASE_RUNNING)).status().code() ==
        absl::StatusCode::kFailedPrecondition);
  CHECK(f.db.Scalar("SELECT string_agg(coalesce(from_phase, '-') || '>' || to_phase, ' ' ORDER BY id) "
                    "FROM session_events WHERE session_id = '" + s->id() + "'") ==
        "->PENDING PENDING>RUNNING RUNNING>TERMINATED");
  CHECK_FALSE(f.db.Scalar("SELECT ended_at FROM sessions WHERE id = '" + s->id() + "'").empty());
}

TEST_CASE("concurrent writers never both win a conflicting move", "[pg][sessions]") {
  Fixture f;
  auto s = f.store.Create("user/alice", "", "", f.Spec());
  REQUIRE(s.ok());
  REQUIRE(f.store.Transition(s->id(), To(v1::SESSION_PHASE_RUNNING)).ok());
  // Eight racers try RUNNING -> HIBERNATED; exactly one can (HIBERNATED -> HIBERNATED is illegal).
  std::atomic<int> won{0}, refused{0};
  std::vector<std::thread> racers;
  for (int i = 0; i < 8; ++i) {
    racers.emplace_back([&] {
      auto r = f.store.Transition(s->id(), To(v1::SESSION_PHASE_HIBERNATED));
      if (r.ok()) ++won;
      else if (r.status().code() == absl::StatusCode::kFailedPrecondition) ++refused;
    });
  }
  for (auto& t : racers) t.join();
  CHECK(won == 1);
  CHECK(refused == 7);
  CHECK(f.db.Scalar("SELECT count(*) FROM session_events WHERE to_phase = 'HIBERNATED'") == "1");
}

TEST_CASE("listing pages newest first, filters, and scopes by owner", "[pg][sessions]") {
  Fixture f;
  for (int i = 0; i < 5; ++i) REQUIRE(f.store.Create("user/alice", "", "", f.Spec()).ok());
  auto other = f.Spec();
  (*other.mutable_labels())["team"] = "audio";
  REQUIRE(f.store.Create("user/bob", "", "", other).ok());

  SessionQuery q;
  q.owner = "user/alice";
  q.page_size = 2;
  std::vector<std::string> ids;
  for (int page = 0; page < 5; ++page) {
    auto p = f.store.List(q);
    REQUIRE(p.ok());
    for (const auto& s : p->sessions) {
      CHECK(s.owner() == "user/alice");
      ids.push_back(s.id());
    }
    if (p->next_page_token.empty()) break;
    q.page_token = p->next_page_token;
  }
  CHECK(ids.size() == 5);
  CHECK(std::set<std::string>(ids.begin(), ids.end()).size() == 5);

  SessionQuery by_label;
  by_label.labels_json = R"({"team":"audio"})";
  auto audio = f.store.List(by_label);
  REQUIRE(audio.ok());
  REQUIRE(audio->sessions.size() == 1);
  CHECK(audio->sessions[0].owner() == "user/bob");

  SessionQuery bad;
  bad.page_token = "garbage";
  CHECK(f.store.List(bad).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("SQL-looking input is stored verbatim", "[pg][sessions]") {
  Fixture f;
  auto spec = f.Spec();
  spec.set_command(1, "'; DROP TABLE sessions; --");
  auto s = f.store.Create("user/o'brien", "x'); DELETE FROM sessions; --", "", spec);
  REQUIRE(s.ok());
  auto read = f.store.Get(s->id());
  REQUIRE(read.ok());
  CHECK(read->spec().command(1) == "'; DROP TABLE sessions; --");
  CHECK(read->owner() == "user/o'brien");
  CHECK(f.db.Scalar("SELECT count(*) FROM sessions") == "1");
}

TEST_CASE("an unreachable database is UNAVAILABLE, not a crash", "[pg][sessions]") {
  PgPool pool("host=127.0.0.1 port=1 user=postgres dbname=postgres connect_timeout=2", 2);
  SessionStore store(&pool);
  auto r = store.Get("00000000-0000-0000-0000-000000000000");
  CHECK(r.status().code() == absl::StatusCode::kUnavailable);
}

}  // namespace gantry::api

namespace gantry::api {
using testing::GpuSpec;

TEST_CASE("a reservation holds GPUs from SCHEDULED until the session ends, and never twice", "[pg][reservation]") {
  Fixture f;
  std::string controller = f.db.Scalar(
      "INSERT INTO controllers (name, type, endpoint, gpus_total) VALUES ('c1', 'gpu', 'x:1', 3) RETURNING id");
  Reservation on_c1{controller, "placing on controller c1"};
  auto two = f.store.Create("user/alice", "", "", GpuSpec(2), &on_c1);
  REQUIRE(two.ok());
  CHECK(two->phase() == v1::SESSION_PHASE_SCHEDULED);
  CHECK(two->controller_id() == controller);
  CHECK(f.db.Scalar("SELECT string_agg(to_phase, ',' ORDER BY id) FROM session_events WHERE session_id = '" +
                    two->id() + "'") == "PENDING,SCHEDULED");
  // One GPU is left: two do not fit, and the refusal writes nothing.
  auto refused = f.store.Create("user/alice", "req-x", "", GpuSpec(2), &on_c1);
  CHECK(refused.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(std::string(refused.status().message()).find("has 1 of its 3 GPU(s) unreserved") != std::string::npos);
  CHECK(f.db.Scalar("SELECT count(*) FROM sessions") == "1");
  CHECK(f.db.Scalar("SELECT count(*) FROM session_events") == "2");
  // CPU-only sessions need no GPUs.
  CHECK(f.store.Create("user/alice", "", "", GpuSpec(0), &on_c1).ok());
  // The session ending gives its GPUs back.
  REQUIRE(f.store.Transition(two->id(), To(v1::SESSION_PHASE_FAILED, "gone")).ok());
  auto three = f.store.Create("user/alice", "", "", GpuSpec(3), &on_c1);
  REQUIRE(three.ok());
  // Discarding an unacknowledged session releases its reservation and leaves no trace.
  REQUIRE(f.store.Discard(three->id()).ok());
  CHECK(f.db.Scalar("SELECT count(*) FROM sessions WHERE id = '" + three->id() + "'") == "0");
  CHECK(f.db.Scalar("SELECT count(*) FROM session_events WHERE session_id = '" + three->id() + "'") == "0");
  // A cordoned or unhealthy controller takes no reservation.
  f.db.Scalar("UPDATE controllers SET cordoned = true RETURNING 1");
  CHECK(f.store.Create("user/alice", "", "", GpuSpec(1), &on_c1).status().code() ==
        absl::StatusCode::kResourceExhausted);
}

TEST_CASE("concurrent reservations never exceed a controller's GPUs", "[pg][reservation]") {
  Fixture f;
  std::string controller = f.db.Scalar(
      "INSERT INTO controllers (name, type, endpoint, gpus_total) VALUES ('c1', 'gpu', 'x:1', 5) RETURNING id");
  Reservation on_c1{controller, "race"};
  std::atomic<int> ok{0}, exhausted{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 24; ++i) {
    threads.emplace_back([&] {
      auto s = f.store.Create("user/alice", "", "", GpuSpec(1), &on_c1);
      if (s.ok()) {
        ++ok;
      } else if (s.status().code() == absl::StatusCode::kResourceExhausted) {
        ++exhausted;
      } else {
        ++other;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(ok == 5);
  CHECK(exhausted == 19);
  CHECK(other == 0);
  CHECK(f.db.Scalar("SELECT sum(gpu_count) FROM sessions") == "5");
}

}  // namespace gantry::api
