// The health check leader's sweep of placements a replica abandoned, on real PostgreSQL with a
// scripted controller: which it keeps asking about, and which it gives up on, and when.
#include "api-server/health_checker.h"

#include <catch2/catch.hpp>

#include <pqxx/connection>
#include <pqxx/transaction>

#include "absl/strings/match.h"

#include "api-server/session_manager.h"
#include "tests/api-server/fake_controller_client.h"
#include "tests/api-server/store_fixture.h"

namespace gantry::api {
namespace {

using testing::FakeControllerClient;

struct Fixture : testing::ManagerFixture {
  PlacementResumer resumer{&controllers, &client, absl::Seconds(1)};

  // A session its replica stored SCHEDULED and never heard back about, `age` ago.
  std::string Abandoned(const std::string& request_id, const std::string& age) {
    auto created = manager.Create(alice, OneGpu(request_id));
    REQUIRE(created.ok());
    REQUIRE(created->phase() == v1::SESSION_PHASE_SCHEDULED);
    db.Scalar("UPDATE sessions SET updated_at = now() - interval '" + age + "' WHERE id = '" + created->id() +
              "' RETURNING id");
    return created->id();
  }
  std::string Phase(const std::string& id) { return db.Scalar("SELECT phase FROM sessions WHERE id = '" + id + "'"); }
  std::string Message(const std::string& id) {
    return db.Scalar("SELECT message FROM sessions WHERE id = '" + id + "'");
  }
  int CreateCalls(const std::string& id) {
    int n = 0;
    for (const auto& c : client.created_ids()) n += c == id;
    return n;
  }
  HealthCheckConfig Config() {
    HealthCheckConfig config;
    config.dsn = db.dsn();
    config.interval = absl::Milliseconds(100);
    config.placement_resume_after = absl::Seconds(1);
    config.placement_timeout = absl::Seconds(3);
    config.placement_give_up = absl::Seconds(30);
    return config;
  }
};

}  // namespace

TEST_CASE("a placement whose healthy controller answers too late is asked again past the timeout, not failed",
          "[pg][placement]") {
  Fixture f;
  f.RegisterController("node1", 2);
  f.client.ScriptCreate({absl::DeadlineExceededError("controller at 127.0.0.1:1: Deadline Exceeded")});
  // Past the (unhealthy-controller) timeout, well short of giving up.
  const std::string busy = f.Abandoned("busy", "10 seconds");
  // Past giving up as well: the bound on waiting for a controller that never answers.
  const std::string hopeless = f.Abandoned("hopeless", "40 seconds");
  // The two creates themselves asked once each.
  REQUIRE(f.client.created_ids().size() == 2);

  HealthChecker checker(f.Config(), &f.pool, &f.sessions, &f.client, &f.resumer);
  checker.Start();
  // Several sweeps ask about the busy one; each answer is "too late", and it stays SCHEDULED
  // and reserved.
  REQUIRE(gantry::testing::WaitFor([&] { return f.CreateCalls(busy) >= 4; }, absl::Seconds(20)));
  CHECK(f.Phase(busy) == "SCHEDULED");
  CHECK(f.db.Scalar("SELECT gpu_count FROM sessions WHERE id = '" + busy + "'") == "1");
  // The hopeless one is failed with why, and its controller told to stop whatever it started.
  REQUIRE(gantry::testing::WaitFor([&] { return f.Phase(hopeless) == "FAILED"; }, absl::Seconds(10)));
  INFO(f.Message(hopeless));
  CHECK(absl::StrContains(f.Message(hopeless), "not resumed: its controller, though healthy, did not answer for it "
                                               "within 30s: controller at 127.0.0.1:1: Deadline Exceeded"));
  const auto deleted = f.client.deleted_ids();
  CHECK(std::count(deleted.begin(), deleted.end(), hopeless) == 1);
  CHECK(std::count(deleted.begin(), deleted.end(), busy) == 0);

  // Once the controller answers, the busy one runs.
  f.client.ScriptCreate({FakeControllerClient::Running()});
  REQUIRE(gantry::testing::WaitFor([&] { return f.Phase(busy) == "RUNNING"; }, absl::Seconds(10)));
  checker.Stop();
  CHECK(f.Phase(hopeless) == "FAILED");
}

TEST_CASE("a placement its controller refuses is failed at once, with the refusal", "[pg][placement]") {
  Fixture f;
  f.RegisterController("node1", 1);
  f.client.ScriptCreate({absl::DeadlineExceededError("controller at 127.0.0.1:1: Deadline Exceeded"),
                         absl::InvalidArgumentError("spec.command: empty")});
  const std::string refused = f.Abandoned("refused", "2 seconds");  // Past resuming, short of the timeout.

  HealthChecker checker(f.Config(), &f.pool, &f.sessions, &f.client, &f.resumer);
  checker.Start();
  REQUIRE(gantry::testing::WaitFor([&] { return f.Phase(refused) == "FAILED"; }, absl::Seconds(10)));
  checker.Stop();
  CHECK(f.CreateCalls(refused) == 2);
  CHECK(absl::StrContains(f.Message(refused), "not resumed: its controller refused it: spec.command: empty"));
  // Its reservation is released.
  CHECK(f.db.Scalar("SELECT count(*) FROM sessions WHERE phase NOT IN ('FAILED', 'TERMINATED')") == "0");
}

// A client retrying a create whose first attempt was left SCHEDULED asks its controller again;
// when the controller takes it but its report does not come (a worker slow to start it, an
// event route backed up), the retry is answered SCHEDULED before the client's deadline.
TEST_CASE("a retried create whose controller's report does not come is answered SCHEDULED before its deadline",
          "[pg][placement]") {
  Fixture f;
  f.RegisterController("node1", 1);
  auto first = f.CreateAnsweredLate("held");
  REQUIRE(first.ok());
  REQUIRE(first->phase() == v1::SESSION_PHASE_SCHEDULED);
  f.client.ScriptCreate({FakeControllerClient::Starting()});

  const absl::Time start = absl::Now();
  const absl::Time deadline = start + absl::Seconds(3);
  DbDeadlineScope scope(deadline - absl::Seconds(1));  // as SessionService sets it
  auto retried = f.manager.Create(f.alice, f.OneGpu("held"), deadline);
  const absl::Duration took = absl::Now() - start;
  INFO("took " << absl::FormatDuration(took) << ": " << retried.status());
  REQUIRE(retried.ok());
  CHECK(retried->id() == first->id());
  CHECK(retried->phase() == v1::SESSION_PHASE_SCHEDULED);
  CHECK(took < absl::Seconds(3));
  CHECK(f.CreateCalls(first->id()) == 2);  // the retry did ask the controller
  // Nothing was written by the retry: still SCHEDULED, for the report (or the sweep) to finish.
  CHECK(f.Phase(first->id()) == "SCHEDULED");
}

}  // namespace gantry::api
