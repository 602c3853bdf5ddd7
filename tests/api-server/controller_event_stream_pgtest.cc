// The one event route's API server end against a real PostgreSQL: a controller's ordered,
// numbered stream of session phase changes is applied in order, each change once, however
// often a part of it is sent (an answer lost, a retry reaching another replica at the same
// time), and a controller that restarted numbers a new stream from 1.
#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

#include "api-server/controller_event_store.h"
#include "api-server/registry_manager.h"
#include "tests/api-server/store_fixture.h"

namespace gantry::api {
namespace {

using testing::GpuSpec;

struct Fixture : testing::StoreFixture {
  ControllerEventStore events{&pool};
  const std::string controller = RegisterController("node1", 4);

  // A one-GPU session SCHEDULED on the controller.
  std::string Scheduled(const std::string& request_id) {
    Reservation reservation{controller, "placing on controller node1"};
    auto created = sessions.Create("user/alice", request_id, "", GpuSpec(1), &reservation);
    REQUIRE(created.ok());
    return created->id();
  }
  static ReportedChange Change(const std::string& id, uint64_t sequence, v1::SessionPhase phase) {
    ReportedChange r;
    r.session_id = id;
    r.sequence = sequence;
    r.change.phase = phase;
    r.change.message = "reported";
    r.change.worker_id = "node1/w1";
    r.change.gpu_uuids = std::vector<std::string>{"GPU-0"};
    return r;
  }
  absl::StatusOr<AppliedReports> Report(const std::string& stream, const std::vector<ReportedChange>& changes) {
    return events.Apply(controller, stream, changes, [this](const v1::Session& stored, const ReportedChange& r) {
      return JudgeControllerReport(controller, stored, r);
    });
  }
  // The phases the session went through, in order, as session_events recorded them.
  std::string History(const std::string& id) {
    return db.Scalar("SELECT string_agg(to_phase, ',' ORDER BY id) FROM session_events WHERE session_id = '" + id +
                     "'");
  }
};

}  // namespace

TEST_CASE("a controller's event stream is applied in order and a part sent again applies nothing twice",
          "[pg][events]") {
  Fixture f;
  const std::string id = f.Scheduled("s");
  const std::vector<ReportedChange> part = {Fixture::Change(id, 1, v1::SESSION_PHASE_RUNNING),
                                            Fixture::Change(id, 2, v1::SESSION_PHASE_HIBERNATED),
                                            Fixture::Change(id, 3, v1::SESSION_PHASE_RUNNING)};
  auto first = f.Report("stream-a", part);
  REQUIRE(first.ok());
  CHECK(first->applied_through == 3);
  CHECK(first->applied.size() == 3);
  CHECK(f.History(id) == "PENDING,SCHEDULED,RUNNING,HIBERNATED,RUNNING");
  auto stored = f.sessions.Get(id);
  REQUIRE(stored.ok());
  CHECK(stored->worker_id() == "node1/w1");
  CHECK(stored->gpu_uuids(0) == "GPU-0");
  const int64_t version = stored->version();

  // Its answer was lost: the controller sends the same part again. Without the recorded
  // sequence, HIBERNATED then RUNNING would be applied a second time.
  auto again = f.Report("stream-a", part);
  REQUIRE(again.ok());
  CHECK(again->applied_through == 3);
  CHECK(again->applied.empty());
  CHECK(f.History(id) == "PENDING,SCHEDULED,RUNNING,HIBERNATED,RUNNING");
  CHECK(f.sessions.Get(id)->version() == version);
}

TEST_CASE("a controller's event stream resumes from the first event not acknowledged", "[pg][events]") {
  Fixture f;
  const std::string id = f.Scheduled("s");
  REQUIRE(f.Report("stream-a", {Fixture::Change(id, 1, v1::SESSION_PHASE_RUNNING)}).ok());
  // The next part repeats what was applied (sent before the answer came back) and goes on.
  auto resumed = f.Report("stream-a", {Fixture::Change(id, 1, v1::SESSION_PHASE_RUNNING),
                                       Fixture::Change(id, 2, v1::SESSION_PHASE_HIBERNATED),
                                       Fixture::Change(id, 3, v1::SESSION_PHASE_RUNNING),
                                       Fixture::Change(id, 4, v1::SESSION_PHASE_HIBERNATED)});
  REQUIRE(resumed.ok());
  CHECK(resumed->applied_through == 4);
  CHECK(resumed->applied.size() == 3);
  CHECK(f.History(id) == "PENDING,SCHEDULED,RUNNING,HIBERNATED,RUNNING,HIBERNATED");
  CHECK(f.db.Scalar("SELECT applied_through FROM controller_event_streams WHERE controller_id = '" + f.controller +
                    "'") == "4");
}

TEST_CASE("a restarted controller's new stream is applied from its first event", "[pg][events]") {
  Fixture f;
  const std::string id = f.Scheduled("s");
  REQUIRE(f.Report("stream-a", {Fixture::Change(id, 1, v1::SESSION_PHASE_RUNNING),
                                Fixture::Change(id, 2, v1::SESSION_PHASE_HIBERNATED)})
              .ok());
  // The restarted process re-adopts the session from its worker and numbers from 1 again.
  auto fresh = f.Report("stream-b", {Fixture::Change(id, 1, v1::SESSION_PHASE_RUNNING)});
  REQUIRE(fresh.ok());
  CHECK(fresh->applied_through == 1);
  CHECK(fresh->applied.size() == 1);
  CHECK(f.History(id) == "PENDING,SCHEDULED,RUNNING,HIBERNATED,RUNNING");
  CHECK(f.db.Scalar("SELECT stream_id FROM controller_event_streams WHERE controller_id = '" + f.controller + "'") ==
        "stream-b");
}

TEST_CASE("the same part of a stream reaching two replicas at once is applied once", "[pg][events]") {
  Fixture f;
  std::vector<std::string> ids;
  std::vector<ReportedChange> part;
  uint64_t sequence = 0;
  for (int i = 0; i < 4; ++i) {
    ids.push_back(f.Scheduled("s" + std::to_string(i)));
    part.push_back(Fixture::Change(ids.back(), ++sequence, v1::SESSION_PHASE_RUNNING));
    part.push_back(Fixture::Change(ids.back(), ++sequence, v1::SESSION_PHASE_HIBERNATED));
    part.push_back(Fixture::Change(ids.back(), ++sequence, v1::SESSION_PHASE_RUNNING));
  }
  absl::StatusOr<AppliedReports> one = absl::UnknownError("not run"), two = absl::UnknownError("not run");
  std::thread a([&] { one = f.Report("stream-a", part); });
  std::thread b([&] { two = f.Report("stream-a", part); });
  a.join();
  b.join();
  REQUIRE(one.ok());
  REQUIRE(two.ok());
  CHECK(one->applied_through == sequence);
  CHECK(two->applied_through == sequence);
  CHECK(one->applied.size() + two->applied.size() == part.size());
  for (const auto& id : ids) CHECK(f.History(id) == "PENDING,SCHEDULED,RUNNING,HIBERNATED,RUNNING");
}

TEST_CASE("reports on sessions that are not the controller's, unknown or ended are not applied", "[pg][events]") {
  Fixture f;
  const std::string mine = f.Scheduled("mine");
  const std::string other_controller = f.RegisterController("node2", 1);
  Reservation elsewhere{other_controller, "placing on controller node2"};
  auto theirs = f.sessions.Create("user/alice", "theirs", "", GpuSpec(1), &elsewhere);
  REQUIRE(theirs.ok());
  const std::string deleted = f.Scheduled("deleted");
  PhaseChange ended;
  ended.phase = v1::SESSION_PHASE_TERMINATED;
  ended.message = "deleted by user/alice";
  REQUIRE(f.sessions.Transition(deleted, ended).ok());
  const std::string unknown = "7a1c6f0e-63f4-4c38-9d0b-5b7f3c1a2e90";

  auto applied = f.Report("stream-a", {Fixture::Change(theirs->id(), 1, v1::SESSION_PHASE_FAILED),
                                       Fixture::Change(unknown, 2, v1::SESSION_PHASE_RUNNING),
                                       Fixture::Change(deleted, 3, v1::SESSION_PHASE_RUNNING),
                                       Fixture::Change(mine, 4, v1::SESSION_PHASE_RUNNING)});
  REQUIRE(applied.ok());
  CHECK(applied->applied_through == 4);
  REQUIRE(applied->applied.size() == 1);
  CHECK(applied->applied[0].id() == mine);
  // The unknown and the deleted session's processes are unwanted: the controller stops them.
  CHECK(applied->sessions_to_stop == std::vector<std::string>{unknown, deleted});
  CHECK(f.sessions.Get(theirs->id())->phase() == v1::SESSION_PHASE_SCHEDULED);
  CHECK(f.sessions.Get(deleted)->phase() == v1::SESSION_PHASE_TERMINATED);
}

}  // namespace gantry::api
