// The API side of controller liveness: a dead controller is found out, its sessions FAILED,
// and the check keeps running when the replica doing it dies.
#include <grpcpp/client_context.h>
#include <signal.h>

#include <catch2/catch.hpp>

#include <thread>

#include "tests/support/local_fleet.h"

namespace gantry::testing {

TEST_CASE("a controller that stops answering is unhealthy, then offline, its sessions FAILED", "[e2e][health]") {
  LocalFleet fleet;  // Health checks every 300 ms: unhealthy after 3 misses, offline after 6.
  fleet.StartSingleNode("1");
  v1::CreateSessionRequest req;
  *req.mutable_spec() = SleepSpec("3600.7979");
  v1::Session s;
  grpc::ClientContext ctx;
  REQUIRE(fleet.AdminSessions()->CreateSession(&ctx, req, &s).ok());

  fleet.controller().Signal(SIGKILL);
  auto status = [&] { return fleet.db().Scalar("SELECT status FROM controllers WHERE name = 'node1'"); };
  CHECK(WaitFor([&] { return status() == "unhealthy"; }, absl::Seconds(5)));
  bool offline = WaitFor([&] { return status() == "offline"; }, absl::Seconds(5));
  INFO(fleet.api().Log());
  REQUIRE(offline);
  CHECK(WaitFor([&] {
    return fleet.db().Scalar("SELECT phase FROM sessions WHERE id = '" + s.id() + "'") == "FAILED";
  }, absl::Seconds(3)));
  CHECK(fleet.db().Scalar("SELECT message FROM sessions WHERE id = '" + s.id() + "'")
            .find("controller node1 went offline") != std::string::npos);
  // Nothing is placed on it any more.
  v1::Session other;
  grpc::ClientContext ctx2;
  CHECK(fleet.AdminSessions()->CreateSession(&ctx2, req, &other).error_code() ==
        grpc::StatusCode::UNAVAILABLE);
}

TEST_CASE("when the replica running health checks dies, another takes over", "[e2e][health]") {
  LocalFleet fleet;
  fleet.StartApi();
  REQUIRE(WaitFor([&] { return fleet.api().Log().find("now runs the controller health checks") !=
                               std::string::npos; }, absl::Seconds(5)));
  Process second({BinaryPath("gantry-api"), "--listen", "127.0.0.1:0"},
                 {{"GANTRY_DATABASE_URL", fleet.db().dsn()}, {"GANTRY_TLS_CA", fleet.pki().ca()},
                  {"GANTRY_TLS_CERT", fleet.pki().dir() + "/api-server.crt"},
                  {"GANTRY_TLS_KEY", fleet.pki().dir() + "/api-server.key"},
                  {"GANTRY_JOIN_TOKEN", kJoinToken}, {"GANTRY_HEALTH_CHECK_INTERVAL", "300ms"},
                  {"GRPC_DNS_RESOLVER", "native"}},
                 fleet.dir().Sub("api2.log"));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  // One leader at a time.
  CHECK(second.Log().find("now runs the controller health checks") == std::string::npos);
  fleet.api().Signal(SIGKILL);
  bool took_over = WaitFor([&] {
    return second.Log().find("now runs the controller health checks") != std::string::npos;
  }, absl::Seconds(3));
  INFO(second.Log());
  CHECK(took_over);
}

}  // namespace gantry::testing

namespace gantry::testing {

TEST_CASE("a controller that shuts down and does not come back loses its sessions after the grace",
          "[e2e][health]") {
  LocalFleet fleet;
  // A grace well beyond the controller's own shutdown time, which is seconds under a sanitizer
  // or a loaded CI machine.
  fleet.api_env["GANTRY_DEREGISTERED_GRACE"] = "6s";
  fleet.StartSingleNode("1");
  v1::CreateSessionRequest req;
  *req.mutable_spec() = SleepSpec("3600.8181");
  v1::Session s;
  grpc::ClientContext ctx;
  REQUIRE(fleet.AdminSessions()->CreateSession(&ctx, req, &s).ok());
  auto phase = [&] { return fleet.db().Scalar("SELECT phase FROM sessions WHERE id = '" + s.id() + "'"); };

  fleet.controller().Signal(SIGTERM);  // Graceful: it deregisters, as a restarting one does.
  REQUIRE(fleet.controller().Wait(absl::Seconds(10)) != -1);
  CHECK(fleet.db().Scalar("SELECT status FROM controllers WHERE name = 'node1'") == "offline");
  // Within the grace it may still come back: the session is left alone.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  CHECK(phase() == "RUNNING");
  bool failed = WaitFor([&] { return phase() == "FAILED"; }, absl::Seconds(12));
  INFO(fleet.api().Log());
  REQUIRE(failed);
  CHECK(fleet.db().Scalar("SELECT message FROM sessions WHERE id = '" + s.id() + "'")
            .find("controller node1 deregistered and did not come back within 6s") != std::string::npos);
}

}  // namespace gantry::testing

namespace gantry::testing {

TEST_CASE("a placement abandoned by a replica that died releases its reservation", "[e2e][health]") {
  LocalFleet fleet;
  fleet.api_env["GANTRY_CONTROLLER_CALL_TIMEOUT"] = "1s";  // Abandoned after three times that.
  fleet.StartSingleNode("1");
  // What a replica SIGKILLed between reserving and hearing back from the controller leaves: a
  // SCHEDULED session holding a GPU. Next to it, a RUNNING one that must be left alone.
  std::string controller = fleet.db().Scalar("SELECT id FROM controllers WHERE name = 'node1'");
  auto insert = [&](const std::string& phase) {
    return fleet.db().Scalar(
        "INSERT INTO sessions (owner, spec, gpu_count, phase, controller_id, updated_at) "
        "VALUES ('user/alice', '{}', 1, '" + phase + "', '" + controller + "', now() - interval '1 hour') "
        "RETURNING id");
  };
  std::string stuck = insert("SCHEDULED");
  std::string running = insert("RUNNING");
  auto phase = [&](const std::string& id) {
    return fleet.db().Scalar("SELECT phase FROM sessions WHERE id = '" + id + "'");
  };
  bool failed = WaitFor([&] { return phase(stuck) == "FAILED"; }, absl::Seconds(5));
  INFO(fleet.api().Log());
  REQUIRE(failed);
  CHECK(fleet.db().Scalar("SELECT message FROM sessions WHERE id = '" + stuck + "'")
            .find("placement abandoned") != std::string::npos);
  CHECK(phase(running) == "RUNNING");
}

}  // namespace gantry::testing
