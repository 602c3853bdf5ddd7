// SessionManager's placement decisions with real stores on PostgreSQL and a scripted controller:
// what a create writes and answers when the controller accepts, refuses, cannot be reached, or
// answers too late.
#include "api-server/session_manager.h"

#include <catch2/catch.hpp>

#include "absl/strings/match.h"

#include "tests/api-server/fake_controller_client.h"
#include "tests/api-server/store_fixture.h"

namespace gantry::api {
namespace {

using testing::FakeControllerClient;

struct Fixture : testing::ManagerFixture {
  std::string Count(const std::string& where) { return db.Scalar("SELECT count(*) FROM sessions WHERE " + where); }
};

}  // namespace

TEST_CASE("a controller that answers too late leaves the session SCHEDULED and reserved, and a retry finishes it",
          "[pg][placement]") {
  Fixture f;
  f.RegisterController("node1", 1);
  auto first = f.CreateAnsweredLate("late-1");
  REQUIRE(first.ok());  // Durable and reserved: acknowledged, not failed and not discarded.
  CHECK(first->phase() == v1::SESSION_PHASE_SCHEDULED);
  CHECK(f.Count("phase = 'SCHEDULED' AND gpu_count = 1") == "1");
  CHECK(f.Count("phase = 'FAILED'") == "0");
  CHECK(f.client.deleted_ids().empty());  // Nothing told to stop what may be starting.
  // Its GPU stays reserved: the one-GPU controller has no room for another session.
  auto second = f.manager.Create(f.alice, f.OneGpu("late-2"));
  CHECK(second.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(f.Count("true") == "1");

  // The client retries with its request_id: the same session, asked of the same controller again.
  auto retried = f.manager.Create(f.alice, f.OneGpu("late-1"));
  REQUIRE(retried.ok());
  CHECK(retried->id() == first->id());
  CHECK(retried->phase() == v1::SESSION_PHASE_RUNNING);
  CHECK(f.client.created_ids() == std::vector<std::string>{first->id(), first->id()});
  CHECK(f.Count("true") == "1");
}

TEST_CASE("a controller that refuses outright fails the session with why, and releases its GPU", "[pg][placement]") {
  Fixture f;
  f.RegisterController("node1", 1);
  f.client.ScriptCreate({absl::FailedPreconditionError("spec.command: /nope is not executable"),
                         FakeControllerClient::Running()});
  auto refused = f.manager.Create(f.alice, f.OneGpu("bad"));
  CHECK(refused.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(f.Count("phase = 'FAILED' AND message LIKE '%not executable%'") == "1");
  auto next = f.manager.Create(f.alice, f.OneGpu("good"));  // The GPU is free again.
  REQUIRE(next.ok());
  CHECK(next->phase() == v1::SESSION_PHASE_RUNNING);
}

TEST_CASE("an unreachable controller gets UNAVAILABLE to the client and leaves nothing written", "[pg][placement]") {
  Fixture f;
  f.RegisterController("node1", 1);
  f.client.ScriptCreate({absl::UnavailableError("controller at 127.0.0.1:1: connection refused")});
  auto created = f.manager.Create(f.alice, f.OneGpu("down"));
  CHECK(created.status().code() == absl::StatusCode::kUnavailable);
  CHECK(f.Count("true") == "0");
  CHECK(f.db.Scalar("SELECT count(*) FROM session_events") == "0");
}

TEST_CASE("a refusal for want of GPUs says which of its figures falls short, and writes nothing", "[pg][placement]") {
  Fixture f;
  f.RegisterController("node1", 2, "127.0.0.1:1", /*max_free_on_one_worker=*/1);  // 1 free on each of 2 workers
  auto two = f.OneGpu("two");
  two.mutable_spec()->mutable_resources()->mutable_gpus()->set_count(2);
  auto spread = f.manager.Create(f.alice, two);
  CHECK(spread.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(std::string(spread.status().message()) ==
        "spec.resources.gpus: asked for 2 GPU(s); 2 of the 2 GPU(s) on the fleet's 1 healthy controller(s) are "
        "unreserved, but no one worker reports 2 free (the most is 1): a session's GPUs are all on one worker, and a "
        "GPU is in use until its last session's process has exited and its worker has said so. Ask for fewer or wait "
        "for GPUs to free up");
  auto three = two;
  three.mutable_spec()->mutable_resources()->mutable_gpus()->set_count(3);
  CHECK(absl::StrContains(f.manager.Create(f.alice, three).status().message(),
                          "asked for 3 GPU(s); only 2 of the 2 GPU(s) on the fleet's 1 healthy controller(s) are unreserved"));
  // Nothing about GPUs: only where it may run, and nothing there.
  auto placed = f.OneGpu("elsewhere");
  placed.mutable_spec()->mutable_resources()->clear_gpus();
  (*placed.mutable_controller_selector())["zone"] = "mars";
  auto nowhere = f.manager.Create(f.alice, placed);
  CHECK(nowhere.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(absl::StartsWith(nowhere.status().message(), "controller_selector: no healthy, uncordoned controller matching"));
  CHECK(f.Count("true") == "0");
  CHECK(f.client.created_ids().empty());
}

}  // namespace gantry::api
