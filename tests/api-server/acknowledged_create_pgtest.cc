// A create without wait_for_running is acknowledged once its session and GPU reservation are
// committed, and started afterwards: what PostgreSQL holds at the acknowledgement, and what
// becomes of the session when its controller accepts, refuses, or is asked again by a retry.
// Real stores on PostgreSQL, a scripted controller that can be held mid-answer.
#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "api-server/session_manager.h"
#include "tests/api-server/fake_controller_client.h"
#include "tests/api-server/store_fixture.h"
#include "tests/support/test_env.h"

namespace gantry::api {
namespace {

using gantry::testing::WaitFor;
using testing::FakeControllerClient;

struct Fixture : testing::ManagerFixture {
  std::string Scalar(const std::string& sql) { return db.Scalar(sql); }
  std::string PhaseOf(const std::string& id) { return Scalar("SELECT phase FROM sessions WHERE id = '" + id + "'"); }
  bool Reaches(const std::string& id, const std::string& phase) {
    return WaitFor([&] { return PhaseOf(id) == phase; }, absl::Seconds(10));
  }
  // Waits for the held controller to have been asked `n` times in all.
  bool Asked(size_t n) {
    return WaitFor([&] { return client.created_ids().size() == n; }, absl::Seconds(10));
  }
  // OneGpu(request_id) acknowledged while the controller, asked to start it, holds its answer
  // (RUNNING once released).
  v1::Session AcknowledgedWhileAsked(const std::string& request_id) {
    client.ScriptCreate({FakeControllerClient::Running()});
    client.HoldCreates();
    auto acked = manager.Create(alice, OneGpu(request_id, /*wait=*/false));
    REQUIRE(acked.ok());
    REQUIRE(Asked(1));
    return *acked;
  }
};

}  // namespace

TEST_CASE("a create is acknowledged SCHEDULED with its GPUs reserved before its controller answers, then started",
          "[pg][placement]") {
  Fixture f;
  const std::string node1 = f.RegisterController("node1", 1);
  f.client.ScriptCreate({FakeControllerClient::Running()});
  f.client.HoldCreates();
  auto acked = f.manager.Create(f.alice, f.OneGpu("ack-1", /*wait=*/false));
  REQUIRE(acked.ok());
  CHECK(acked->phase() == v1::SESSION_PHASE_SCHEDULED);
  CHECK(acked->controller_id() == node1);
  // Durable at the acknowledgement: the row, its events, and the GPU it holds.
  CHECK(f.PhaseOf(acked->id()) == "SCHEDULED");
  CHECK(f.Scalar("SELECT string_agg(to_phase, ',' ORDER BY id) FROM session_events WHERE session_id = '" +
                 acked->id() + "'") == "PENDING,SCHEDULED");
  CHECK(f.manager.Create(f.alice, f.OneGpu("ack-2", false)).status().code() ==
        absl::StatusCode::kResourceExhausted);
  REQUIRE(f.Asked(1));  // The controller is being asked, and has not answered.
  CHECK(f.PhaseOf(acked->id()) == "SCHEDULED");

  f.client.ReleaseCreates();
  REQUIRE(f.Reaches(acked->id(), "RUNNING"));
  CHECK(f.Scalar("SELECT worker_id FROM sessions WHERE id = '" + acked->id() + "'") == "node1/w1");
  CHECK(f.client.created_ids() == std::vector<std::string>{acked->id()});
}

TEST_CASE("an acknowledged session its controller refuses moves to the next candidate and starts there",
          "[pg][placement]") {
  Fixture f;
  f.RegisterController("node1", 1);
  f.RegisterController("node2", 1);
  f.client.ScriptCreate({absl::ResourceExhaustedError("no worker has a free GPU"), FakeControllerClient::Running()});
  auto acked = f.manager.Create(f.alice, f.OneGpu("moves", false));
  REQUIRE(acked.ok());
  CHECK(acked->phase() == v1::SESSION_PHASE_SCHEDULED);
  REQUIRE(f.Reaches(acked->id(), "RUNNING"));
  const std::string now_on = f.Scalar("SELECT controller_id FROM sessions WHERE id = '" + acked->id() + "'");
  CHECK(now_on != acked->controller_id());
  // The move is on record, with the refusal, and the first controller's GPU is free again.
  CHECK(f.Scalar("SELECT count(*) FROM session_events WHERE session_id = '" + acked->id() +
                 "' AND from_phase = 'SCHEDULED' AND to_phase = 'SCHEDULED' AND message LIKE "
                 "'%after a refusal (%no worker has a free GPU)'") == "1");
  CHECK(f.Scalar("SELECT count(*) FROM sessions WHERE controller_id = '" + acked->controller_id() + "'") == "0");
  CHECK(f.client.created_ids() == std::vector<std::string>{acked->id(), acked->id()});
}

TEST_CASE("an acknowledged session every controller refuses becomes FAILED with each reason and frees its GPUs",
          "[pg][placement]") {
  Fixture f;
  f.RegisterController("node1", 1);
  f.RegisterController("node2", 1);
  f.client.ScriptCreate({absl::ResourceExhaustedError("GPU-0 is still in use")});
  auto acked = f.manager.Create(f.alice, f.OneGpu("nowhere", false));
  REQUIRE(acked.ok());
  REQUIRE(f.Reaches(acked->id(), "FAILED"));
  const std::string message = f.Scalar("SELECT message FROM sessions WHERE id = '" + acked->id() + "'");
  CHECK(absl::StrContains(message, "no controller would start it (tried node"));
  CHECK(absl::StrContains(message, "node1: GPU-0 is still in use"));
  CHECK(absl::StrContains(message, "node2: GPU-0 is still in use"));
  CHECK(f.client.created_ids().size() == 2);
  // Nothing reserved any more: both controllers take a new session.
  f.client.ScriptCreate({FakeControllerClient::Running()});
  for (const char* id : {"after-1", "after-2"}) {
    auto placed = f.manager.Create(f.alice, f.OneGpu(id));
    REQUIRE(placed.ok());
    CHECK(placed->phase() == v1::SESSION_PHASE_RUNNING);
  }
}

TEST_CASE("a retried create finds its acknowledged session as it stands, without asking the controller again",
          "[pg][placement]") {
  Fixture f;
  f.RegisterController("node1", 2);
  const v1::Session acked = f.AcknowledgedWhileAsked("retry-me");
  auto retried = f.manager.Create(f.alice, f.OneGpu("retry-me", false));
  REQUIRE(retried.ok());
  CHECK(retried->id() == acked.id());
  CHECK(retried->phase() == v1::SESSION_PHASE_SCHEDULED);
  CHECK(f.Scalar("SELECT count(*) FROM sessions") == "1");
  f.client.ReleaseCreates();
  REQUIRE(f.Reaches(acked.id(), "RUNNING"));
  CHECK(f.client.created_ids().size() == 1);
}

TEST_CASE("a session deleted while its controller is being asked to start it is stopped by the answer to its report",
          "[pg][placement]") {
  Fixture f;
  f.RegisterController("node1", 1);
  const v1::Session acked = f.AcknowledgedWhileAsked("short-lived");
  auto deleted = f.manager.Delete(f.alice, acked.id());
  REQUIRE(deleted.ok());
  CHECK(deleted->phase() == v1::SESSION_PHASE_TERMINATED);
  CHECK(f.told_to_stop().empty());
  f.client.ReleaseCreates();
  // The controller started it after the delete, and reports RUNNING: the answer on its event
  // route tells it to stop the process, and PostgreSQL keeps it TERMINATED.
  REQUIRE(WaitFor([&] { return f.told_to_stop().size() == 1; }, absl::Seconds(10)));
  CHECK(f.told_to_stop()[0] == acked.id());
  CHECK(f.PhaseOf(acked.id()) == "TERMINATED");
}

TEST_CASE("with the start queue full a create starts its own session before answering", "[pg][placement]") {
  Fixture f;
  f.RegisterController("node1", 3);
  f.client.ScriptCreate({FakeControllerClient::Running()});
  // One start at a time, one waiting.
  SessionManager narrow(&f.sessions, &f.controllers, &f.client, &f.templates, &f.changes, 3, 1, 1);
  f.client.HoldCreates();
  auto first = narrow.Create(f.alice, f.OneGpu("q-1", false));
  REQUIRE(first.ok());
  REQUIRE(f.Asked(1));  // On the pool's one thread, held.
  auto second = narrow.Create(f.alice, f.OneGpu("q-2", false));
  REQUIRE(second.ok());  // Queued.
  CHECK(second->phase() == v1::SESSION_PHASE_SCHEDULED);
  // The third finds the queue full: its create asks the controller itself, so it answers only
  // once the controller has.
  absl::StatusOr<v1::Session> third = absl::UnknownError("not answered");
  std::thread caller([&] { third = narrow.Create(f.alice, f.OneGpu("q-3", false)); });
  REQUIRE(f.Asked(2));
  f.client.ReleaseCreates();
  caller.join();
  REQUIRE(third.ok());
  // Answered once its controller took it (asked on the caller's thread, while the second still
  // waited in the queue); what it became follows on the event route, like the others'.
  const auto asked = f.client.created_ids();
  REQUIRE(asked.size() >= 2);
  CHECK(asked[1] == third->id());
  REQUIRE(f.Reaches(third->id(), "RUNNING"));
  REQUIRE(f.Reaches(first->id(), "RUNNING"));
  REQUIRE(f.Reaches(second->id(), "RUNNING"));
  CHECK(narrow.StopStarting() == 0);
}

}  // namespace gantry::api
