// AdminService against a real fleet: API keys, controllers, cordon/drain/delete, token
// rotation, workers and the cluster summary.
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>

#include <catch2/catch.hpp>

#include "common/tls.h"
#include "gantry/v1/admin_service.grpc.pb.h"
#include "gantry/v1/controller_service.grpc.pb.h"
#include "tests/support/invariants.h"
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
  create.set_wait_for_running(true);
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
  create.set_wait_for_running(true);
  *create.mutable_spec() = SleepSpec("3600.6868");
  v1::Session s;
  CHECK(sessions->CreateSession(Ctx().get(), create, &s).error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(fleet.db().Scalar("SELECT count(*) FROM sessions") == "0");

  v1::UncordonControllerRequest uncordon;
  uncordon.set_id(node.id());
  REQUIRE(admin->UncordonController(Ctx().get(), uncordon, &c).ok());
  REQUIRE(sessions->CreateSession(Ctx().get(), create, &s).ok());

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

  // Drained: no new placement there, and its session stopped through the normal stop path.
  const auto pids = PidsWithCmdline("sleep 3600.6868");
  REQUIRE(pids.size() == 1);
  v1::DrainControllerRequest drain;
  drain.set_id(node.id());
  v1::DrainControllerResponse drained;
  REQUIRE(admin->DrainController(Ctx().get(), drain, &drained).ok());
  CHECK(drained.controller().cordoned());
  CHECK(drained.stopped_sessions() == 1);
  CHECK(drained.remaining_sessions() == 0);
  CHECK(fleet.db().Scalar("SELECT phase FROM sessions WHERE id = '" + s.id() + "'") == "TERMINATED");
  CHECK(fleet.db().Scalar("SELECT count(*) FROM session_events WHERE session_id = '" + s.id() +
                          "' AND to_phase = 'TERMINATING'") == "1");
  CHECK(WaitFor([] { return PidsWithCmdline("sleep 3600.6868").empty(); }, absl::Seconds(10)));
  v1::Session refused;
  CHECK(sessions->CreateSession(Ctx().get(), create, &refused).error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(fleet.db().Scalar("SELECT count(*) FROM sessions") == "1");
  // Nothing left: it can be forgotten now (not here: the rotation below needs it).
  REQUIRE(admin->DrainController(Ctx().get(), drain, &drained).ok());
  CHECK(drained.stopped_sessions() == 0);

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

TEST_CASE("a drain of a node with running sessions ends with none running there and no new placement, and the other node "
          "carries on",
          "[e2e][admin]") {
  LocalFleet fleet;
  fleet.StartApi();
  fleet.StartController("node1");
  fleet.StartWorker("w1", "4", 0);
  fleet.StartController("node2");
  fleet.StartWorker("w2", "4", 1);
  fleet.WaitUntilWorkersOnline(2);
  fleet.WaitUntilSchedulable(4);
  const std::string node1 = fleet.db().Scalar("SELECT id FROM controllers WHERE name = 'node1'");
  const std::string node2 = fleet.db().Scalar("SELECT id FROM controllers WHERE name = 'node2'");
  auto sessions = fleet.AdminSessions();
  auto create_on = [&](const std::string& controller, const std::string& marker, v1::Session* out) {
    v1::CreateSessionRequest req;
    req.set_wait_for_running(true);
    *req.mutable_spec() = SleepSpec(marker, 1);
    req.set_controller_id(controller);
    return sessions->CreateSession(Ctx().get(), req, out);
  };
  std::vector<std::string> drained_ids;
  for (int i = 0; i < 4; ++i) {
    v1::Session s;
    REQUIRE(create_on(node1, "3600.3821", &s).ok());
    drained_ids.push_back(s.id());
  }
  v1::Session elsewhere;
  REQUIRE(create_on(node2, "3600.3822", &elsewhere).ok());
  REQUIRE(PidsWithCmdline("sleep 3600.3821").size() == 4);

  auto admin = v1::AdminService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops"));
  v1::DrainControllerRequest drain;
  drain.set_id(node1);
  v1::DrainControllerResponse drained;
  auto ctx = Ctx();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  REQUIRE(admin->DrainController(ctx.get(), drain, &drained).ok());
  CHECK(drained.stopped_sessions() == 4);
  CHECK(drained.remaining_sessions() == 0);
  for (const auto& id : drained_ids) {
    CHECK(fleet.db().Scalar("SELECT phase FROM sessions WHERE id = '" + id + "'") == "TERMINATED");
  }
  CHECK(WaitFor([] { return PidsWithCmdline("sleep 3600.3821").empty(); }, absl::Seconds(10)));
  CHECK(fleet.db().Scalar("SELECT phase FROM sessions WHERE id = '" + elsewhere.id() + "'") == "RUNNING");
  CHECK(PidsWithCmdline("sleep 3600.3822").size() == 1);

  // No new placement there: what names it is refused, the rest goes to node2.
  v1::Session refused;
  CHECK(create_on(node1, "3600.3823", &refused).error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(fleet.db().Scalar("SELECT count(*) FROM sessions WHERE controller_id = '" + node1 +
                          "' AND phase NOT IN ('TERMINATED', 'FAILED')") == "0");
  v1::Session next;
  REQUIRE(fleet.CreateAsAdmin(SleepSpec("3600.3824", 1), &next).ok());
  CHECK(next.controller_id() == node2);

  // The node itself knows (its next heartbeat's answer): its controller refuses a placement that
  // raced the cordon, and its worker has been told to take no new work (DrainCommand).
  REQUIRE(WaitFor([&] { return fleet.worker(0).Log().find("draining: no new sessions") != std::string::npos; },
                  absl::Seconds(10)));
  CHECK(fleet.worker(1).Log().find("draining: no new sessions") == std::string::npos);
  const std::string api_cert = fleet.pki().dir() + "/api-server";
  auto creds = MakeChannelCredentials({fleet.pki().ca(), api_cert + ".crt", api_cert + ".key"});
  REQUIRE(creds.ok());
  auto as_api = v1::ControllerService::NewStub(grpc::CreateChannel(fleet.controller_address(0), *creds));
  v1::ControllerCreateSessionRequest raced;
  raced.set_session_id("00000000-0000-4000-8000-000000003825");
  *raced.mutable_spec() = SleepSpec("3600.3825", 1);
  v1::ControllerSessionResponse answer;
  grpc::Status raced_status = as_api->CreateSession(Ctx().get(), raced, &answer);
  CHECK(raced_status.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(raced_status.error_message().find("draining") != std::string::npos);
  CHECK(PidsWithCmdline("sleep 3600.3825").empty());

  // Uncordoned: the drain is over, on the node too, before the call returns (the controller is
  // told at once, not at its next heartbeat), so a create right after it is placed there.
  v1::UncordonControllerRequest uncordon;
  uncordon.set_id(node1);
  v1::Controller back;
  REQUIRE(admin->UncordonController(Ctx().get(), uncordon, &back).ok());
  v1::Session again;
  grpc::Status placed_again = create_on(node1, "3600.3826", &again);
  INFO(placed_again.error_message());
  REQUIRE(placed_again.ok());
  CHECK(again.phase() == v1::SESSION_PHASE_RUNNING);
  CHECK(fleet.worker(0).Log().find("drain over") != std::string::npos);
  RequireInvariants(fleet, {drained_ids[0], drained_ids[1], drained_ids[2], drained_ids[3], elsewhere.id(), next.id(),
                            again.id()});
}

TEST_CASE("a rotated token is handed to the running controller, which uses it, and the old one is refused after the grace",
          "[e2e][admin]") {
  LocalFleet fleet;
  fleet.api_env["GANTRY_TOKEN_ROTATION_GRACE"] = "2s";
  fleet.StartSingleNode("1");
  const std::string node = fleet.db().Scalar("SELECT id FROM controllers WHERE name = 'node1'");
  auto admin = v1::AdminService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops"));
  auto rotate = [&] {
    v1::RotateControllerTokenRequest request;
    request.set_id(node);
    v1::RotateControllerTokenResponse token;
    REQUIRE(admin->RotateControllerToken(Ctx().get(), request, &token).ok());
    CHECK(token.delivered());
    return token;
  };
  // As the controller (its certificate), heartbeating with `token`.
  auto registry = v1::RegistryService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/controller-node1"));
  auto heartbeat_with = [&](const std::string& token) {
    v1::HeartbeatRequest beat;
    beat.set_controller_id(node);
    beat.set_controller_token(token);
    v1::HeartbeatResponse answer;
    return registry->Heartbeat(Ctx().get(), beat, &answer);
  };

  const v1::RotateControllerTokenResponse first = rotate();
  const v1::RotateControllerTokenResponse second = rotate();
  CHECK(second.previous_expire_time().seconds() - absl::ToUnixSeconds(absl::Now()) <= 2);
  // The first is the previous one now: good for the grace, then refused.
  CHECK(heartbeat_with(first.controller_token()).ok());
  CHECK(WaitFor([&] { return !heartbeat_with(first.controller_token()).ok(); }, absl::Seconds(10)));
  CHECK(heartbeat_with(first.controller_token()).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(heartbeat_with(second.controller_token()).ok());

  // The controller switched to each new token without a restart or a new registration: its
  // heartbeats go on being accepted past the grace, and it stays healthy.
  const std::string after_grace = fleet.db().Scalar("SELECT now()::text");
  CHECK(WaitFor([&] {
    return fleet.db().Scalar("SELECT count(*) FROM controllers WHERE last_heartbeat > '" + after_grace +
                             "'::timestamptz + interval '1 second'") == "1";
  }, absl::Seconds(10)));
  CHECK(fleet.db().Scalar("SELECT status FROM controllers") == "healthy");
  const std::string controller_log = fleet.controller().Log();
  INFO(controller_log);
  size_t adopted = 0;
  for (size_t at = 0; (at = controller_log.find("the new one is in use", at)) != std::string::npos; ++at) ++adopted;
  CHECK(adopted == 2);
  CHECK(controller_log.find("registered with the API server as") == controller_log.rfind("registered with the API server as"));
}

}  // namespace gantry::testing
