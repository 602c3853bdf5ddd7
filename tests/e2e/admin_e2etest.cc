// AdminService against a real fleet: API keys, controllers, cordon/drain/delete, token
// rotation, workers and the cluster summary.
#include <grpcpp/client_context.h>

#include <catch2/catch.hpp>

#include "gantry/v1/admin_service.grpc.pb.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

std::unique_ptr<grpc::ClientContext> Ctx(const std::string& bearer = "") {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  if (!bearer.empty()) ctx->AddMetadata("authorization", "Bearer " + bearer);
  return ctx;
}

}  // namespace

TEST_CASE("API keys: created for a user, usable at once, stored hashed, revocable", "[e2e][admin]") {
  LocalFleet fleet;
  fleet.StartSingleNode("1");
  auto admin = v1::AdminService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops"));

  v1::CreateApiKeyRequest req;
  req.set_principal("alice");
  req.set_role("user");
  v1::CreateApiKeyResponse key;
  REQUIRE(admin->CreateApiKey(Ctx().get(), req, &key).ok());
  CHECK(key.api_key().size() > 43);
  CHECK(fleet.db().Scalar("SELECT count(*) FROM api_keys WHERE key_sha256 = '" + key.api_key() + "'") == "0");
  CHECK(fleet.db().Scalar("SELECT principal FROM api_keys WHERE id = '" + key.key_id() + "'") == "user/alice");

  auto sessions = v1::SessionService::NewStub(fleet.ChannelWithoutCert());
  v1::CreateSessionRequest create;
  *create.mutable_spec() = SleepSpec("3600.5757");
  v1::Session s;
  REQUIRE(sessions->CreateSession(Ctx(key.api_key()).get(), create, &s).ok());
  CHECK(s.owner() == "user/alice");
  // A user key cannot administer.
  v1::ClusterStatus cs;
  CHECK(v1::AdminService::NewStub(fleet.ChannelWithoutCert())
            ->GetClusterStatus(Ctx(key.api_key()).get(), v1::GetClusterStatusRequest(), &cs)
            .error_code() == grpc::StatusCode::PERMISSION_DENIED);

  v1::RevokeApiKeyRequest revoke;
  revoke.set_key_id(key.key_id());
  v1::RevokeApiKeyResponse revoked;
  REQUIRE(admin->RevokeApiKey(Ctx().get(), revoke, &revoked).ok());
  v1::ListSessionsResponse listed;
  CHECK(sessions->ListSessions(Ctx(key.api_key()).get(), v1::ListSessionsRequest(), &listed)
            .error_code() == grpc::StatusCode::UNAUTHENTICATED);
  revoke.set_key_id("key-unknown");
  CHECK(admin->RevokeApiKey(Ctx().get(), revoke, &revoked).error_code() == grpc::StatusCode::NOT_FOUND);

  for (auto [principal, role, field] : {std::tuple{"alice", "root", "role"},
                                        std::tuple{"Alice Smith", "user", "principal"},
                                        std::tuple{"", "admin", "principal"}}) {
    v1::CreateApiKeyRequest bad;
    bad.set_principal(principal);
    bad.set_role(role);
    grpc::Status st = admin->CreateApiKey(Ctx().get(), bad, &key);
    CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(st.error_message().rfind(field, 0) == 0);
  }
}

TEST_CASE("controllers: listed, cordoned (never chosen), drained, protected from deletion", "[e2e][admin]") {
  LocalFleet fleet;
  fleet.StartSingleNode("2:Simulated A100:40", 2);
  auto admin = v1::AdminService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops"));
  auto sessions = fleet.AdminSessions();

  v1::ListControllersResponse listed;
  REQUIRE(admin->ListControllers(Ctx().get(), v1::ListControllersRequest(), &listed).ok());
  REQUIRE(listed.controllers_size() == 1);
  const v1::Controller node = listed.controllers(0);
  CHECK(node.name() == "node1");
  CHECK(node.status() == v1::CONTROLLER_STATUS_HEALTHY);
  CHECK(node.capacity().gpus_total() == 2);
  CHECK(node.capacity().gpu_models(0) == "Simulated A100");

  v1::GetControllerRequest get;
  get.set_id("00000000-0000-0000-0000-000000000000");
  v1::Controller c;
  CHECK(admin->GetController(Ctx().get(), get, &c).error_code() == grpc::StatusCode::NOT_FOUND);

  v1::CordonControllerRequest cordon;
  cordon.set_id(node.id());
  REQUIRE(admin->CordonController(Ctx().get(), cordon, &c).ok());
  CHECK(c.cordoned());
  v1::CreateSessionRequest create;
  *create.mutable_spec() = SleepSpec("3600.6868");
  v1::Session s;
  CHECK(sessions->CreateSession(Ctx().get(), create, &s).error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(fleet.db().Scalar("SELECT count(*) FROM sessions") == "0");

  v1::UncordonControllerRequest uncordon;
  uncordon.set_id(node.id());
  REQUIRE(admin->UncordonController(Ctx().get(), uncordon, &c).ok());
  REQUIRE(sessions->CreateSession(Ctx().get(), create, &s).ok());

  v1::DrainControllerRequest drain;
  drain.set_id(node.id());
  v1::DrainControllerResponse drained;
  REQUIRE(admin->DrainController(Ctx().get(), drain, &drained).ok());
  CHECK(drained.controller().cordoned());
  CHECK(drained.remaining_sessions() == 1);

  v1::DeleteControllerRequest del;
  del.set_id(node.id());
  v1::DeleteControllerResponse deleted;
  grpc::Status st = admin->DeleteController(Ctx().get(), del, &deleted);
  CHECK(st.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(st.error_message().find("1 live session") != std::string::npos);

  // Workers, fanned out to the controller.
  v1::ListWorkersResponse workers;
  REQUIRE(admin->ListWorkers(Ctx().get(), v1::ListWorkersRequest(), &workers).ok());
  REQUIRE(workers.workers_size() == 1);
  CHECK(workers.workers(0).name() == "w1");
  CHECK(workers.workers(0).controller_id() == node.id());
  CHECK(workers.workers(0).gpus_size() == 2);
  CHECK(workers.workers(0).status() == v1::WORKER_STATUS_ONLINE);
  CHECK(workers.unreachable_controllers_size() == 0);

  // The summary: one healthy controller, one running session, one of two GPUs in use.
  bool summarized = WaitFor([&] {
    v1::ClusterStatus cs;
    if (!admin->GetClusterStatus(Ctx().get(), v1::GetClusterStatusRequest(), &cs).ok()) return false;
    return cs.controllers_by_status().at("healthy") == 1 && cs.sessions_by_phase().count("RUNNING") &&
           cs.sessions_by_phase().at("RUNNING") == 1 && cs.gpus_total() == 2 && cs.gpus_used() == 1;
  }, absl::Seconds(5));
  CHECK(summarized);

  // Rotation: the new token works, the old one does not.
  v1::RotateControllerTokenRequest rotate;
  rotate.set_id(node.id());
  v1::RotateControllerTokenResponse token;
  REQUIRE(admin->RotateControllerToken(Ctx().get(), rotate, &token).ok());
  auto registry = v1::RegistryService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/controller-node1"));
  v1::HeartbeatRequest beat;
  beat.set_controller_id(node.id());
  beat.set_controller_token(token.controller_token());
  v1::HeartbeatResponse hb;
  CHECK(registry->Heartbeat(Ctx().get(), beat, &hb).ok());
  CHECK(hb.cordoned());
}

}  // namespace gantry::testing
