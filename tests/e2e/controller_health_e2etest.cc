// The API side of controller liveness: a dead controller is found out, its sessions FAILED,
// and the check keeps running when the replica doing it dies.
#include <grpcpp/client_context.h>
#include <signal.h>

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include <future>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {

TEST_CASE("a controller that stops answering is unhealthy, then offline, its sessions FAILED", "[e2e][health]") {
  LocalFleet fleet;  // Health checks every 300 ms: unhealthy after 3 misses, offline after 6.
  fleet.StartSingleNode("1");
  v1::CreateSessionRequest req;
  req.set_wait_for_running(true);
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
  // Its health check loop runs from before it serves: then for a second (3 rounds), it must
  // not lead while the first replica does.
  REQUIRE(WaitFor([&] { return second.Log().find("serving on port") != std::string::npos; }, absl::Seconds(10)));
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
  req.set_wait_for_running(true);
  *req.mutable_spec() = SleepSpec("3600.3708");
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

// What a replica SIGKILLed between reserving and hearing back from the controller leaves: a
// SCHEDULED session holding a GPU, `age` old, placed on `controller`.
std::string InsertScheduled(LocalFleet& fleet, const std::string& spec_json, const std::string& age,
                            const std::string& request_id = "") {
  std::string controller = fleet.db().Scalar("SELECT id FROM controllers WHERE name = 'node1'");
  return fleet.db().Scalar(
      "INSERT INTO sessions (owner, request_id, spec, gpu_count, phase, controller_id, updated_at) "
      "VALUES ('admin/ops', NULLIF('" + request_id + "', ''), '" + spec_json + "', 1, 'SCHEDULED', '" + controller +
      "', now() - interval '" + age + "') RETURNING id");
}

std::string Phase(LocalFleet& fleet, const std::string& id) {
  return fleet.db().Scalar("SELECT phase FROM sessions WHERE id = '" + id + "'");
}

TEST_CASE("placements a dead replica abandoned are resumed on their controller, or FAILED if it refuses",
          "[e2e][health]") {
  LocalFleet fleet;
  // Resumed after that, given up after 3x: inserted 2 s old, they have 4 s to be resumed in,
  // even if a loaded machine makes the controller miss a few health checks meanwhile.
  fleet.api_env["GANTRY_CONTROLLER_CALL_TIMEOUT"] = "2s";
  fleet.StartSingleNode("2");
  std::string resumable = InsertScheduled(
      fleet, R"({"command": ["sleep", "3600.3701"], "resources": {"gpus": {"count": 1}}})", "2 seconds");
  // Its controller refuses an empty command: nothing to resume.
  std::string refused = InsertScheduled(fleet, "{}", "2 seconds");
  std::string controller = fleet.db().Scalar("SELECT id FROM controllers WHERE name = 'node1'");
  std::string running = fleet.db().Scalar(
      "INSERT INTO sessions (owner, spec, gpu_count, phase, controller_id) VALUES ('user/alice', '{}', 0, 'RUNNING', '" +
      controller + "') RETURNING id");

  bool settled = WaitFor([&] { return Phase(fleet, resumable) == "RUNNING" && Phase(fleet, refused) == "FAILED"; },
                         absl::Seconds(10));
  INFO(fleet.db().Scalar("SELECT string_agg(phase || ': ' || message, '; ') FROM sessions") << "\n"
                                                                                               << fleet.api().Log());
  REQUIRE(settled);
  // Resumed once: one process, on the GPU it holds.
  CHECK(PidsWithCmdline("sleep 3600.3701").size() == 1);
  CHECK(fleet.db().Scalar("SELECT jsonb_array_length(gpu_uuids) FROM sessions WHERE id = '" + resumable + "'") == "1");
  const std::string why = fleet.db().Scalar("SELECT message FROM sessions WHERE id = '" + refused + "'");
  INFO(why);
  CHECK(why.find("placement abandoned by the API server placing it, and not resumed: its controller refused it") !=
        std::string::npos);
  CHECK(why.find("spec.command: empty") != std::string::npos);
  CHECK(Phase(fleet, running) == "RUNNING");
  // The refused one's reservation is released: one GPU is still free for a new session.
  CHECK(fleet.db().Scalar("SELECT sum(gpu_count) FROM sessions WHERE phase NOT IN ('TERMINATED', 'FAILED')") == "1");
  v1::Session next;
  CHECK(fleet.CreateAsAdmin(SleepSpec("3600.3702"), &next).ok());
}

TEST_CASE("a placement whose controller stays unreachable is FAILED after three call timeouts", "[e2e][health]") {
  LocalFleet fleet;
  fleet.api_env["GANTRY_CONTROLLER_CALL_TIMEOUT"] = "1s";
  fleet.api_env["GANTRY_OFFLINE_AFTER"] = "100";  // Unhealthy, not offline (which fails sessions too).
  fleet.StartSingleNode("1");
  fleet.controller().Signal(SIGSTOP);
  REQUIRE(WaitFor([&] { return fleet.db().Scalar("SELECT status FROM controllers") == "unhealthy"; },
                  absl::Seconds(15)));
  std::string stuck = InsertScheduled(fleet, R"({"command": ["sleep", "3600.3703"]})", "2 seconds");
  bool failed = WaitFor([&] { return Phase(fleet, stuck) == "FAILED"; }, absl::Seconds(15));
  fleet.controller().Signal(SIGCONT);
  INFO(fleet.api().Log());
  REQUIRE(failed);
  CHECK(fleet.db().Scalar("SELECT message FROM sessions WHERE id = '" + stuck + "'")
            .find("not resumed: its controller is not healthy") != std::string::npos);
  CHECK(PidsWithCmdline("sleep 3600.3703").empty());
}

TEST_CASE("a create retried with its request_id finishes the placement its first attempt left SCHEDULED",
          "[e2e][health]") {
  LocalFleet fleet;  // The default 30 s call timeout: the leader's sweep would not get there first.
  fleet.StartSingleNode("1");
  std::string left = InsertScheduled(
      fleet, R"({"command": ["sleep", "3600.3704"], "resources": {"gpus": {"count": 1}}})", "0 seconds", "retry-me");
  v1::CreateSessionRequest req;
  req.set_wait_for_running(true);
  *req.mutable_spec() = SleepSpec("3600.3704");
  req.set_request_id("retry-me");
  v1::Session got;
  grpc::ClientContext ctx;
  grpc::Status st = fleet.AdminSessions()->CreateSession(&ctx, req, &got);
  INFO(st.error_message() << fleet.api().Log());
  REQUIRE(st.ok());
  CHECK(got.id() == left);
  CHECK(got.phase() == v1::SESSION_PHASE_RUNNING);
  CHECK(PidsWithCmdline("sleep 3600.3704").size() == 1);
  // Retried again: the same session, not started twice.
  grpc::ClientContext again_ctx;
  v1::Session again;
  REQUIRE(fleet.AdminSessions()->CreateSession(&again_ctx, req, &again).ok());
  CHECK(again.id() == left);
  CHECK(PidsWithCmdline("sleep 3600.3704").size() == 1);
  CHECK(fleet.db().Scalar("SELECT count(*) FROM sessions") == "1");
}

TEST_CASE("a controller stays selectable and the API server SERVING while clients hold every database connection",
          "[e2e][health]") {
  // Clients get two connections; what controllers and the health checks do has its own. The
  // creates below wait on a lock for longer than the default --db-timeout would let them.
  LocalFleet fleet;
  fleet.api_env["GANTRY_DB_POOL_SIZE"] = "2";
  fleet.api_env["GANTRY_DB_TIMEOUT"] = "60s";
  fleet.StartSingleNode("1");
  auto& db = fleet.db();

  // Two creates hold both client connections, each stuck inserting its session behind a lock
  // this test holds (reads, which heartbeats and health checks do, pass it).
  pqxx::connection holder(db.dsn());
  auto lock = std::make_unique<pqxx::work>(holder);
  lock->exec("LOCK TABLE sessions IN EXCLUSIVE MODE");
  const std::string wedged_at = db.Scalar("SELECT clock_timestamp()");
  auto create = [&](const std::string& request_id) {
    v1::CreateSessionRequest req;
    req.set_wait_for_running(true);
    *req.mutable_spec() = SleepSpec("3600.3709", 0);
    req.set_request_id(request_id);
    v1::Session s;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return fleet.AdminSessions()->CreateSession(&ctx, req, &s);
  };
  auto first = std::async(std::launch::async, create, "held-1");
  auto second = std::async(std::launch::async, create, "held-2");
  REQUIRE(WaitFor([&] {
    return db.Scalar("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                     "AND query LIKE '%INSERT INTO sessions (%'") == "2";
  }, absl::Seconds(10)));

  // Heartbeats go on being stored past their freshness (3 intervals of 1 s), so the controller
  // stays selectable; its health checks pass; and the database probe keeps the API SERVING.
  bool beating = WaitFor([&] {
    return db.Scalar("SELECT count(*) FROM controllers WHERE last_heartbeat > '" + wedged_at +
                     "'::timestamptz + interval '4 seconds'") == "1";
  }, absl::Seconds(15));
  INFO(fleet.api().Log() << fleet.controller().Log());
  CHECK(beating);
  CHECK(db.Scalar("SELECT status || ' ' || missed_health_checks FROM controllers") == "healthy 0");
  auto health = grpc::health::v1::Health::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops"));
  grpc::ClientContext health_ctx;
  health_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  grpc::health::v1::HealthCheckResponse serving;
  CHECK(health->Check(&health_ctx, grpc::health::v1::HealthCheckRequest(), &serving).ok());
  CHECK(serving.status() == grpc::health::v1::HealthCheckResponse::SERVING);
  // The two creates were still waiting all along, and finish once the lock goes.
  CHECK(db.Scalar("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                  "AND query LIKE '%INSERT INTO sessions (%'") == "2");
  lock.reset();  // Rolled back: the lock is released.
  grpc::Status a = first.get(), b = second.get();
  INFO(a.error_message() << " / " << b.error_message());
  CHECK(a.ok());
  CHECK(b.ok());
  CHECK(db.Scalar("SELECT count(*) FROM sessions WHERE phase = 'RUNNING'") == "2");
  CHECK(PidsWithCmdline("sleep 3600.3709").size() == 2);
}

}  // namespace gantry::testing
