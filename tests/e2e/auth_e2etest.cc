// Authentication and roles at every door, with nothing written on refusal.
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>

#include <catch2/catch.hpp>

#include "common/tls.h"
#include "gantry/v1/admin_service.grpc.pb.h"
#include "gantry/v1/controller_service.grpc.pb.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

grpc::Status TryCreate(const std::shared_ptr<grpc::Channel>& channel,
                       const std::string& bearer = "") {
  auto stub = v1::SessionService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!bearer.empty()) ctx.AddMetadata("authorization", "Bearer " + bearer);
  v1::CreateSessionRequest req;
  req.set_wait_for_running(true);
  *req.mutable_spec() = SleepSpec("3600.8161", 0);
  v1::Session out;
  return stub->CreateSession(&ctx, req, &out);
}

}  // namespace

TEST_CASE("client credentials are checked and refusals write nothing", "[e2e][auth]") {
  LocalFleet fleet;
  fleet.StartApi();

  SECTION("no certificate and no API key") {
    CHECK(TryCreate(fleet.ChannelWithoutCert()).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  }
  SECTION("an unknown API key") {
    CHECK(TryCreate(fleet.ChannelWithoutCert(), "not-a-key").error_code() ==
          grpc::StatusCode::UNAUTHENTICATED);
  }
  SECTION("the bootstrap admin key works over TLS without a client certificate") {
    grpc::Status s = TryCreate(fleet.ChannelWithoutCert(), kAdminKey);
    // Authenticated: refused only because no controller is running.
    CHECK(s.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(s.error_message().find("no healthy") != std::string::npos);
  }
  SECTION("a worker certificate calling SessionService") {
    auto worker = fleet.pki().Issue("worker", "w9");
    CHECK(TryCreate(fleet.ChannelWithCert(worker)).error_code() ==
          grpc::StatusCode::PERMISSION_DENIED);
  }
  SECTION("a controller certificate calling SessionService") {
    auto controller = fleet.pki().Issue("controller", "c9");
    CHECK(TryCreate(fleet.ChannelWithCert(controller)).error_code() ==
          grpc::StatusCode::PERMISSION_DENIED);
  }
  SECTION("a certificate from another CA is refused in the TLS handshake") {
    TempDir other_dir;
    Pki other(other_dir.Sub("pki"));
    auto rogue = other.Issue("admin", "mallory");
    // The client trusts the real CA but presents a certificate the server's CA never signed.
    grpc::Status s = TryCreate(fleet.ChannelWithCert(rogue, fleet.pki().ca()));
    CHECK_FALSE(s.ok());
    CHECK(s.error_code() == grpc::StatusCode::UNAVAILABLE);  // No TLS session, no call.
  }
  SECTION("a user calling AdminService is denied; an admin reaches it") {
    auto user = fleet.pki().Issue("user", "alice");
    auto admin_stub = v1::AdminService::NewStub(fleet.ChannelWithCert(user));
    grpc::ClientContext ctx;
    v1::ListControllersResponse out;
    CHECK(admin_stub->ListControllers(&ctx, v1::ListControllersRequest(), &out).error_code() ==
          grpc::StatusCode::PERMISSION_DENIED);
    auto real_admin = v1::AdminService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops"));
    grpc::ClientContext ctx2;
    CHECK(real_admin->ListControllers(&ctx2, v1::ListControllersRequest(), &out).ok());
  }
  CHECK(fleet.db().Scalar("SELECT count(*) FROM sessions") == "0");
  CHECK(fleet.db().Scalar("SELECT count(*) FROM session_events") == "0");
}

TEST_CASE("controller registration needs the join token and a matching certificate", "[e2e][auth]") {
  LocalFleet fleet;
  fleet.StartApi();
  auto node = fleet.pki().Issue("controller", "node7");
  auto stub = v1::RegistryService::NewStub(fleet.ChannelWithCert(node));
  v1::RegisterControllerRequest req;
  req.set_name("node7");
  req.set_type("gpu-node");
  req.set_endpoint("127.0.0.1:1");

  SECTION("a wrong join token") {
    req.set_join_token("wrong-token-0123456789");
    grpc::ClientContext ctx;
    v1::RegisterControllerResponse out;
    CHECK(stub->RegisterController(&ctx, req, &out).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  }
  SECTION("a name that is not the certificate's") {
    req.set_join_token(kJoinToken);
    req.set_name("node8");
    grpc::ClientContext ctx;
    v1::RegisterControllerResponse out;
    CHECK(stub->RegisterController(&ctx, req, &out).error_code() == grpc::StatusCode::PERMISSION_DENIED);
  }
  SECTION("a user certificate") {
    req.set_join_token(kJoinToken);
    auto user_stub = v1::RegistryService::NewStub(fleet.ChannelWithCert(fleet.pki().Issue("user", "u")));
    grpc::ClientContext ctx;
    v1::RegisterControllerResponse out;
    CHECK(user_stub->RegisterController(&ctx, req, &out).error_code() ==
          grpc::StatusCode::PERMISSION_DENIED);
  }
  CHECK(fleet.db().Scalar("SELECT count(*) FROM controllers") == "0");

  SECTION("the right token: a stable id and a token stored only as its hash") {
    req.set_join_token(kJoinToken);
    grpc::ClientContext ctx;
    v1::RegisterControllerResponse out;
    REQUIRE(stub->RegisterController(&ctx, req, &out).ok());
    CHECK(out.controller_token().size() >= 43);  // 256 bits.
    CHECK(fleet.db().Scalar("SELECT count(*) FROM controller_tokens WHERE token_sha256 = '" +
                            out.controller_token() + "'") == "0");
    v1::HeartbeatRequest beat;
    beat.set_controller_id(out.controller_id());
    beat.set_controller_token("forged");
    grpc::ClientContext hb_ctx;
    v1::HeartbeatResponse hb;
    CHECK(stub->Heartbeat(&hb_ctx, beat, &hb).error_code() == grpc::StatusCode::UNAUTHENTICATED);
    beat.set_controller_token(out.controller_token());
    grpc::ClientContext hb_ok;
    CHECK(stub->Heartbeat(&hb_ok, beat, &hb).ok());
  }
}

namespace {

// Registers controller `name` with its own certificate; `stub` is left speaking as it.
v1::RegisterControllerResponse RegisterNode(LocalFleet& fleet, const std::string& name,
                                            std::unique_ptr<v1::RegistryService::Stub>* stub) {
  *stub = v1::RegistryService::NewStub(fleet.ChannelWithCert(fleet.pki().Issue("controller", name)));
  v1::RegisterControllerRequest req;
  req.set_join_token(kJoinToken);
  req.set_name(name);
  req.set_type("gpu-node");
  req.set_endpoint("127.0.0.1:1");
  v1::RegisterControllerResponse registered;
  grpc::ClientContext ctx;
  REQUIRE((*stub)->RegisterController(&ctx, req, &registered).ok());
  return registered;
}

// Calls a RegistryService method carrying `as`'s controller id and token.
template <typename Request, typename Response>
grpc::Status CallAs(grpc::Status (v1::RegistryService::Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                    v1::RegistryService::Stub& stub, const v1::RegisterControllerResponse& as) {
  Request request;
  request.set_controller_id(as.controller_id());
  request.set_controller_token(as.controller_token());
  grpc::ClientContext ctx;
  Response response;
  return (stub.*method)(&ctx, request, &response);
}

}  // namespace

TEST_CASE("a controller's certificate cannot heartbeat, report or deregister as another controller", "[e2e][auth]") {
  LocalFleet fleet;
  fleet.StartApi();
  std::unique_ptr<v1::RegistryService::Stub> node7;
  const v1::RegisterControllerResponse registered = RegisterNode(fleet, "node7", &node7);
  const std::string row_sql = "SELECT c.status || c.endpoint || t.token_sha256 || t.expires_at || c.last_heartbeat "
                              "FROM controllers c JOIN controller_tokens t ON t.controller_id = c.id";
  const std::string before = fleet.db().Scalar(row_sql);

  // Another node's certificate, holding node7's id and live token (say, stolen from its host).
  auto node8 = v1::RegistryService::NewStub(fleet.ChannelWithCert(fleet.pki().Issue("controller", "node8")));
  const std::string why = "the certificate names controller \"node8\", but controller " +
                          registered.controller_id() + " is \"node7\": a controller acts only as itself";
  for (const grpc::Status& refused :
       {CallAs(&v1::RegistryService::Stub::Heartbeat, *node8, registered),
        CallAs(&v1::RegistryService::Stub::ReportSessionEvents, *node8, registered),
        CallAs(&v1::RegistryService::Stub::Deregister, *node8, registered)}) {
    CHECK(refused.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    CHECK(refused.error_message() == why);
  }
  // Nothing about node7 changed, and node8 was never registered.
  CHECK(fleet.db().Scalar(row_sql) == before);
  CHECK(fleet.db().Scalar("SELECT string_agg(name, ',') FROM controllers") == "node7");
  // Its own certificate still may.
  CHECK(CallAs(&v1::RegistryService::Stub::Heartbeat, *node7, registered).ok());
}

TEST_CASE("an id carrying a newline and a quote reaches the log as one escaped line", "[e2e][auth]") {
  LocalFleet fleet;
  fleet.StartApi();
  std::unique_ptr<v1::RegistryService::Stub> node7;
  const v1::RegisterControllerResponse registered = RegisterNode(fleet, "node7", &node7);
  // A node lists a session id of its own making: the API server logs it (and asks for it to
  // be stopped). Were it written raw, the log would gain a line the API server never wrote.
  v1::HeartbeatRequest beat;
  beat.set_controller_id(registered.controller_id());
  beat.set_controller_token(registered.controller_token());
  beat.add_session_ids("x\n2026-12-06T00:00:00.000 E gantry-api FORGED \"admin\" \\");
  grpc::ClientContext beat_ctx;
  v1::HeartbeatResponse answer;
  REQUIRE(node7->Heartbeat(&beat_ctx, beat, &answer).ok());
  REQUIRE(answer.sessions_to_stop_size() == 1);
  const std::string escaped = "x\\n2026-12-06T00:00:00.000 E gantry-api FORGED \\\"admin\\\" \\\\";
  REQUIRE(WaitFor([&] { return fleet.api().Log().find(escaped) != std::string::npos; }, absl::Seconds(5)));
  const std::string log = fleet.api().Log();
  INFO(log);
  CHECK(log.find("\n2026-12-06T00:00:00.000 E gantry-api FORGED") == std::string::npos);
  CHECK(log.find("\"admin\"") == std::string::npos);
}

TEST_CASE("the controller serves only the API server's certificate", "[e2e][auth]") {
  LocalFleet fleet;
  fleet.StartApi();
  fleet.StartController();
  auto as = [&](const std::string& prefix) {
    auto creds = MakeChannelCredentials({fleet.pki().ca(), prefix + ".crt", prefix + ".key"});
    REQUIRE(creds.ok());
    return v1::ControllerService::NewStub(grpc::CreateChannel(fleet.controller_address(), *creds));
  };
  v1::HealthCheckResponse out;
  grpc::ClientContext user_ctx;
  CHECK(as(fleet.pki().dir() + "/admin-ops")->HealthCheck(&user_ctx, v1::HealthCheckRequest(), &out)
            .error_code() == grpc::StatusCode::PERMISSION_DENIED);
  grpc::ClientContext api_ctx;
  CHECK(as(fleet.pki().dir() + "/api-server")->HealthCheck(&api_ctx, v1::HealthCheckRequest(), &out).ok());
  // Without a client certificate there is no connection at all.
  auto creds = MakeChannelCredentials({fleet.pki().ca(), "", ""});
  auto anon = v1::ControllerService::NewStub(grpc::CreateChannel(fleet.controller_address(), *creds));
  grpc::ClientContext anon_ctx;
  anon_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  CHECK(anon->HealthCheck(&anon_ctx, v1::HealthCheckRequest(), &out).error_code() ==
        grpc::StatusCode::UNAVAILABLE);
}

}  // namespace gantry::testing
