// Quotas where they are enforced, against a real PostgreSQL: a reservation moved to another
// controller is charged again there, and a row written by an API server of the version before
// teams existed is charged to its owner's team of one.
#include <catch2/catch.hpp>

#include <string>

#include "api-server/sql_queries.h"
#include "api-server/team_quota.h"
#include "api-server/team_store.h"
#include "tests/api-server/store_fixture.h"

namespace gantry::api {
namespace {

using testing::GpuSpec;

struct Fixture : testing::StoreFixture {
  TeamStore teams{&pool};

  // A controller whose GPUs are all of `model`.
  std::string RegisterWithModel(const std::string& name, int gpus, const std::string& model) {
    const std::string id = RegisterController(name, gpus);
    db.Scalar("UPDATE controllers SET capacity = jsonb_set(capacity, '{gpu_models}', '[\"" + model +
              "\"]') WHERE id = '" + id + "'");
    return id;
  }
};

}  // namespace

TEST_CASE("a reservation moved to a controller of a model over the team's quota is refused there, and charged "
          "again where it fits",
          "[pg][quota]") {
  Fixture f;
  const std::string a100 = f.RegisterWithModel("a100-node", 8, "NVIDIA A100-SXM4-80GB");
  const std::string h100 = f.RegisterWithModel("h100-node", 8, "NVIDIA H100 80GB HBM3");
  const std::string h100b = f.RegisterWithModel("h100-node-b", 8, "NVIDIA H100 80GB HBM3");
  v1::SetQuotaRequest quota;
  quota.set_team("user/alice");
  (*quota.mutable_max_gpus_by_model())["h100"] = 2;
  REQUIRE(f.teams.SetQuota(quota).ok());

  // Two H100s held, then a session of two on the A100s: within the quota.
  Reservation on_h100{h100, "placing on h100-node"};
  REQUIRE(f.sessions.Create("user/alice", "", "", GpuSpec(2), &on_h100).ok());
  Reservation on_a100{a100, "placing on a100-node"};
  auto session = f.sessions.Create("user/alice", "", "", GpuSpec(2), &on_a100);
  REQUIRE(session.ok());
  CHECK(f.db.Scalar("SELECT gpu_model FROM sessions WHERE id = '" + session->id() + "'") == "NVIDIA A100-SXM4-80GB");

  // The A100 node refuses it: moving it to H100s would be four of the two allowed.
  auto moved = f.sessions.MoveReservation(*session, a100, Reservation{h100b, "placing on h100-node-b"});
  CHECK(moved.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(IsQuotaRefusal(moved.status()));
  CHECK(moved.status().message().find("max_gpus_by_model[\"h100\"] is 2 and the team holds 2") != std::string::npos);
  CHECK(f.db.Scalar("SELECT controller_id::text FROM sessions WHERE id = '" + session->id() + "'") == a100);

  // Once the H100s are given back, it moves, and is charged as an H100 session there.
  f.db.Scalar("UPDATE sessions SET phase = 'TERMINATED' WHERE controller_id = '" + h100 + "'");
  moved = f.sessions.MoveReservation(*session, a100, Reservation{h100b, "placing on h100-node-b"});
  REQUIRE(moved.ok());
  CHECK(f.db.Scalar("SELECT gpu_model || ' ' || gpu_memory_bytes FROM sessions WHERE id = '" + session->id() + "'") ==
        "NVIDIA H100 80GB HBM3 " + std::to_string(2 * (80LL << 30)));
  auto now = f.teams.GetQuota("user/alice");
  REQUIRE(now.ok());
  CHECK(now->gpus_used_by_model().at("h100") == 2);
}

TEST_CASE("a session row written without a team, as an API server of the version before writes it, is charged to "
          "its owner's team of one",
          "[pg][quota]") {
  Fixture f;
  f.db.Scalar("INSERT INTO sessions (owner, spec, phase) VALUES ('user/bob', '{}', 'RUNNING')");
  CHECK(f.db.Scalar("SELECT team FROM sessions WHERE owner = 'user/bob'") == "user/bob");
  v1::SetQuotaRequest quota;
  quota.set_team("user/bob");
  quota.set_max_sessions(1);
  REQUIRE(f.teams.SetQuota(quota).ok());
  auto refused = f.sessions.Create("user/bob", "", "", GpuSpec(0));
  CHECK(refused.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(f.db.Scalar("SELECT count(*) FROM sessions") == "1");
}

}  // namespace gantry::api
