// Preemption where it is decided, against a real PostgreSQL: candidates by class, priority and
// min_runtime; a plan carried out once under the controller's lock (a second preemptor finds
// the victims taken and writes nothing); the room kept for the preemptor it was made for; and
// nothing preempted for a create its team's quota would refuse.
#include <catch2/catch.hpp>

#include <string>

#include "api-server/preemption_store.h"
#include "api-server/team_quota.h"
#include "api-server/team_store.h"
#include "tests/api-server/store_fixture.h"

namespace gantry::api {
namespace {

using testing::GpuSpec;

struct Fixture : testing::StoreFixture {
  PreemptionStore preemptions{&pool, absl::Seconds(15)};
  TeamStore teams{&pool};
  std::string controller;

  Fixture() {
    // One worker with 2 GPUs, both in use.
    controller = RegisterController("node", 2);
    db.Scalar("UPDATE controllers SET capacity = capacity || '{\"workers\": [{\"worker_id\": \"node/w\", \"gpus_total\": "
              "2, \"max_gpu_memory_bytes\": \"85899345920\", \"gpu_models\": [\"NVIDIA H100\"]}]}' WHERE id = '" +
              controller + "'");
    db.Scalar("INSERT INTO priority_classes (name, value, preemptible, min_runtime_seconds) VALUES "
              "('batch', 0, true, 0), ('patient', 1, true, 3600), ('pinned', 2, false, 0), ('urgent', 100, false, 0)");
  }

  // A session of `owner` RUNNING on the worker for `ran_seconds`, of `klass`; its id.
  std::string Running(const std::string& klass, int priority, int ran_seconds, const std::string& owner = "user/bob") {
    return db.Scalar("INSERT INTO sessions (owner, spec, phase, controller_id, worker_id, gpu_count, priority, "
                     "started_at, placed_at) VALUES ('" + owner + "', '{\"priority_class\": \"" + klass +
                     "\", \"resources\": {\"gpus\": {\"count\": 1}}}', 'RUNNING', '" + controller +
                     "', 'node/w', 1, " + std::to_string(priority) + ", now() - interval '" +
                     std::to_string(ran_seconds) + " seconds', now() - interval '" + std::to_string(ran_seconds) +
                     " seconds') RETURNING id::text");
  }

  QueuedCreate Urgent(const std::string& request_id, const std::string& owner = "user/alice") {
    v1::SessionSpec spec = GpuSpec(1);
    spec.set_priority_class("urgent");
    return QueuedCreate{owner, request_id, "", spec, 100, absl::Hours(1), "{}"};
  }

  PlacementRequest OneGpu() {
    PlacementRequest p;
    p.gpu_count = 1;
    return p;
  }

  // An urgent create's preemption on the controller, which must stop exactly `victim`.
  Preemption PreemptOne(const std::string& request_id, const std::string& victim) {
    auto done = preemptions.PreemptForCreate(OneGpu(), controller, Urgent(request_id));
    INFO(done.status().ToString());
    REQUIRE(done.ok());
    REQUIRE(done->victims.size() == 1);
    CHECK(done->victims[0].id() == victim);
    return *std::move(done);
  }
};

}  // namespace

TEST_CASE("only preemptible sessions of a lower priority that ran their min_runtime are candidates", "[pg][preemption]") {
  Fixture f;
  const std::string batch = f.Running("batch", 0, 10);
  f.Running("patient", 1, 10);   // Under its class's hour.
  f.Running("pinned", 2, 7200);  // Not preemptible.
  f.Running("urgent", 100, 10);  // Not below the create.
  auto candidates = f.preemptions.Candidates(f.OneGpu(), 100);
  INFO(candidates.status().ToString());
  REQUIRE(candidates.ok());
  REQUIRE(candidates->size() == 1);
  CHECK((*candidates)[0].session_id == batch);
  CHECK((*candidates)[0].worker_id == "node/w");
  // Four sessions written by hand on its two GPUs: the reservations count them all the same.
  CHECK((*candidates)[0].controller_unreserved == 2 - 4);
  // A team holding more than its quota (lowered since): its sessions are marked so.
  v1::SetQuotaRequest lowered;
  lowered.set_team("user/bob");
  lowered.set_max_gpus(1);
  REQUIRE(f.teams.SetQuota(lowered).ok());
  candidates = f.preemptions.Candidates(f.OneGpu(), 100);
  REQUIRE(candidates.ok());
  REQUIRE(candidates->size() == 1);
  CHECK((*candidates)[0].over_quota);
  // A create asking for more memory per GPU than the worker's GPUs have can use none of them.
  PlacementRequest big = f.OneGpu();
  big.min_gpu_memory_bytes = 100LL << 30;
  CHECK(f.preemptions.Candidates(big, 100)->empty());
}

TEST_CASE("a preemption is carried out once: the second preemptor finds the victim taken and writes nothing",
          "[pg][preemption]") {
  Fixture f;
  const std::string victim = f.Running("batch", 0, 10);
  f.Running("pinned", 2, 10);
  const Preemption first = f.PreemptOne("first", victim);
  CHECK(first.victims[0].phase() == v1::SESSION_PHASE_TERMINATING);
  REQUIRE(first.victims[0].conditions_size() == 1);
  CHECK(first.victims[0].conditions(0).type() == "Preempted");
  CHECK(first.victims[0].conditions(0).message().find(first.preemptor.id()) != std::string::npos);
  CHECK(first.preemptor.phase() == v1::SESSION_PHASE_PENDING);
  CHECK(f.db.Scalar("SELECT nominated_controller_id::text FROM sessions WHERE id = '" + first.preemptor.id() + "'") ==
        f.controller);
  CHECK(f.db.Scalar("SELECT count(*) FROM session_events WHERE session_id = '" + victim +
                    "' AND to_phase = 'TERMINATING'") == "1");

  auto second = f.preemptions.PreemptForCreate(f.OneGpu(), f.controller, f.Urgent("second"));
  CHECK(second.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK_FALSE(IsQuotaRefusal(second.status()));
  CHECK(f.db.Scalar("SELECT count(*) FROM sessions WHERE request_id = 'second'") == "0");
  CHECK(f.db.Scalar("SELECT count(*) FROM sessions WHERE phase = 'TERMINATING'") == "1");
  auto stopping = f.preemptions.VictimsStopping(first.preemptor.id(), absl::Hours(1));
  REQUIRE(stopping.ok());
  CHECK(stopping->count == 1);
  CHECK(stopping->stale.empty());
  // Unanswered for longer than asked: to be stopped again.
  stopping = f.preemptions.VictimsStopping(first.preemptor.id(), absl::ZeroDuration());
  REQUIRE(stopping.ok());
  REQUIRE(stopping->stale.size() == 1);
  CHECK(stopping->stale[0].id() == victim);
}

TEST_CASE("the room a preemption made is kept for its preemptor, which is placed once the victim has stopped",
          "[pg][preemption]") {
  Fixture f;
  const std::string victim = f.Running("batch", 0, 10);
  f.Running("batch", 0, 20);
  const Preemption done = f.PreemptOne("urgent", victim);  // The most recently started of the two.
  const Reservation there{f.controller, "test"};
  // While the victim stops, its GPU is still held: the preemptor does not fit yet.
  CHECK(f.sessions.ScheduleQueued(done.preemptor, there).status().code() == absl::StatusCode::kResourceExhausted);
  f.db.Scalar("UPDATE sessions SET phase = 'TERMINATED', ended_at = now() WHERE id = '" + victim + "'");
  CHECK(f.preemptions.VictimsStopping(done.preemptor.id(), absl::Hours(1))->count == 0);
  // Freed, but nominated: a create of anyone else finds no room there.
  CHECK(f.sessions.Create("user/carol", "", "", GpuSpec(1), &there).status().code() ==
        absl::StatusCode::kResourceExhausted);
  auto placed = f.sessions.ScheduleQueued(done.preemptor, there);
  REQUIRE(placed.ok());
  CHECK(placed->phase() == v1::SESSION_PHASE_SCHEDULED);
  CHECK(f.db.Scalar("SELECT coalesce(nominated_controller_id::text, 'none') FROM sessions WHERE id = '" +
                    placed->id() + "'") == "none");
}

TEST_CASE("nothing is preempted for a create its team's quota would refuse", "[pg][preemption]") {
  Fixture f;
  f.Running("batch", 0, 10);
  f.Running("urgent", 100, 10, "user/alice");  // alice's team holds 1 GPU of its 1.
  v1::SetQuotaRequest quota;
  quota.set_team("user/alice");
  quota.set_max_gpus(1);
  REQUIRE(f.teams.SetQuota(quota).ok());
  auto refused = f.preemptions.PreemptForCreate(f.OneGpu(), f.controller, f.Urgent("over"));
  CHECK(IsQuotaRefusal(refused.status()));
  CHECK(f.db.Scalar("SELECT count(*) FROM sessions WHERE phase = 'TERMINATING' OR request_id = 'over'") == "0");
}

}  // namespace gantry::api
