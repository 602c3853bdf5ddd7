// A worker that dies never leaves a session process behind, and its sessions become FAILED.
#include <grpcpp/client_context.h>
#include <signal.h>

#include <catch2/catch.hpp>

#include <thread>

#include "absl/strings/match.h"
#include "tests/support/invariants.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {

TEST_CASE("a worker killed with SIGKILL takes its session processes with it", "[e2e][faults]") {
  LocalFleet fleet;
  fleet.StartSingleNode("1");
  auto stub = fleet.AdminSessions();
  v1::CreateSessionRequest req;
  req.set_wait_for_running(true);
  *req.mutable_spec() = SleepSpec("3600.8181");
  v1::Session session;
  grpc::ClientContext ctx;
  REQUIRE(stub->CreateSession(&ctx, req, &session).ok());
  REQUIRE(session.phase() == v1::SESSION_PHASE_RUNNING);
  REQUIRE(PidsWithCmdline("sleep 3600.8181").size() == 1);

  fleet.worker().Signal(SIGKILL);
  CHECK(WaitFor([] { return PidsWithCmdline("sleep 3600.8181").empty(); }, absl::Seconds(5)));
  // The controller sees the stream break at once and reports the loss.
  bool failed = WaitFor([&] {
    return fleet.db().Scalar("SELECT phase FROM sessions WHERE id = '" + session.id() + "'") == "FAILED";
  }, absl::Seconds(5));
  INFO(fleet.controller().Log());
  CHECK(failed);
  CHECK(fleet.db().Scalar("SELECT message FROM sessions WHERE id = '" + session.id() + "'")
            .find("worker w1 lost") != std::string::npos);
  RequireInvariants(fleet, std::vector<std::string>{session.id()});
}

TEST_CASE("a worker stopped with SIGTERM stops its sessions and exits", "[e2e][faults]") {
  LocalFleet fleet;
  fleet.StartSingleNode("1");
  auto stub = fleet.AdminSessions();
  v1::CreateSessionRequest req;
  req.set_wait_for_running(true);
  *req.mutable_spec() = SleepSpec("3600.9191");
  v1::Session session;
  grpc::ClientContext ctx;
  REQUIRE(stub->CreateSession(&ctx, req, &session).ok());
  fleet.worker().Signal(SIGTERM);
  int status = fleet.worker().Wait(absl::Seconds(10));
  INFO(fleet.worker().Log());
  REQUIRE(status != -1);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(PidsWithCmdline("sleep 3600.9191").empty());
  // The stop was reported before the worker left: the session ended on request.
  CHECK(WaitFor([&] {
    return fleet.db().Scalar("SELECT phase FROM sessions WHERE id = '" + session.id() + "'") != "RUNNING";
  }, absl::Seconds(5)));
}

TEST_CASE("a controller killed and restarted re-adopts the same 50 running processes", "[e2e][faults]") {
  LocalFleet fleet;
  // Generous: the restart must not race the API's offline verdict on a slow machine.
  fleet.api_env["GANTRY_OFFLINE_AFTER"] = "100";
  // Sessions the controller's heartbeats stop listing for this long are lost: the restart,
  // with its worker reconnecting, must re-adopt them well within it.
  fleet.api_env["GANTRY_UNHELD_SESSION_GRACE"] = "5s";
  fleet.StartSingleNode("2", 2);
  auto stub = fleet.AdminSessions();
  std::vector<v1::Session> sessions;
  for (const char* marker : {"3600.1313", "3600.1414"}) {
    v1::CreateSessionRequest req;
    req.set_wait_for_running(true);
    *req.mutable_spec() = SleepSpec(marker);
    v1::Session s;
    grpc::ClientContext ctx;
    REQUIRE(stub->CreateSession(&ctx, req, &s).ok());
    sessions.push_back(s);
  }
  // 48 more without GPUs: 50 in all.
  std::vector<std::string> acknowledged = {sessions[0].id(), sessions[1].id()};
  for (int i = 0; i < 48; ++i) {
    v1::Session s;
    REQUIRE(fleet.CreateAsAdmin(ShellSpec("exec sleep 3600.1515"), &s).ok());
    REQUIRE(s.phase() == v1::SESSION_PHASE_RUNNING);
    acknowledged.push_back(s.id());
  }
  auto before = PidsWithCmdline("sleep 3600.1313");
  REQUIRE(before.size() == 1);
  const auto others_before = PidsWithCmdline("sleep 3600.1515");
  REQUIRE(others_before.size() == 48);

  fleet.RestartController();
  // The worker reconnects to the new controller process and re-reports both sessions.
  bool readopted = WaitFor([&] {
    return fleet.controller().Log().find("worker w1 connected with 50 running session") != std::string::npos;
  }, absl::Seconds(15));
  INFO("controller " << (fleet.controller().Alive() ? "alive" : "dead") << "; its log:\n"
       << fleet.controller().Log() << "\nworker log:\n" << fleet.worker().Log());
  REQUIRE(readopted);
  CHECK(PidsWithCmdline("sleep 3600.1313") == before);
  CHECK(PidsWithCmdline("sleep 3600.1515") == others_before);
  // Past the grace, nothing was taken for lost: the heartbeats list all 50 again.
  std::this_thread::sleep_for(std::chrono::seconds(6));
  CHECK(fleet.db().Scalar("SELECT count(*) FROM sessions WHERE phase = 'RUNNING'") == "50");
  CHECK(fleet.api().Log().find(" lost: ") == std::string::npos);
  // The new controller really holds them: it can stop one.
  grpc::ClientContext del_ctx;
  v1::DeleteSessionRequest del;
  del.set_id(sessions[0].id());
  v1::Session deleted;
  REQUIRE(stub->DeleteSession(&del_ctx, del, &deleted).ok());
  CHECK(deleted.phase() == v1::SESSION_PHASE_TERMINATED);
  CHECK(WaitFor([] { return PidsWithCmdline("sleep 3600.1313").empty(); }, absl::Seconds(5)));
  CHECK(PidsWithCmdline("sleep 3600.1414").size() == 1);
  RequireInvariants(fleet, acknowledged);
}

}  // namespace gantry::testing

namespace gantry::testing {

TEST_CASE("sessions a restarted controller never hears of again are FAILED as lost after the grace",
          "[e2e][faults]") {
  LocalFleet fleet;
  fleet.api_env["GANTRY_OFFLINE_AFTER"] = "100";  // The controller comes back: not offline.
  fleet.api_env["GANTRY_UNHELD_SESSION_GRACE"] = "3s";
  fleet.StartSingleNode("1");
  v1::Session s;
  REQUIRE(fleet.CreateAsAdmin(SleepSpec("3600.3705"), &s).ok());
  // A row as a restored backup would have it: RUNNING on this controller, long gone.
  std::string restored = fleet.db().Scalar(
      "INSERT INTO sessions (owner, spec, gpu_count, phase, controller_id, updated_at) VALUES ('admin/ops', '{}', 0, "
      "'RUNNING', '" + s.controller_id() + "', now() - interval '1 day') RETURNING id");
  // The controller dies, then its worker (and the process with it) while nothing listens; the
  // controller restarts and never hears of the session again.
  fleet.controller().Signal(SIGKILL);
  fleet.worker().Signal(SIGKILL);
  REQUIRE(fleet.worker().Wait(absl::Seconds(5)) != -1);
  fleet.RestartController();
  auto phase = [&](const std::string& id) {
    return fleet.db().Scalar("SELECT phase || ': ' || message FROM sessions WHERE id = '" + id + "'");
  };
  bool lost = WaitFor([&] { return absl::StartsWith(phase(s.id()), "FAILED") && absl::StartsWith(phase(restored), "FAILED"); },
                      absl::Seconds(20));
  INFO(phase(s.id()) << "\n" << phase(restored) << "\n" << fleet.api().Log());
  REQUIRE(lost);
  CHECK(absl::StrContains(phase(s.id()), "lost: not held by its controller for 3s"));
  CHECK(absl::StrContains(phase(restored), "lost: not held by its controller"));
  CHECK(PidsWithCmdline("sleep 3600.3705").empty());
  // The notes of absence go with the next heartbeat once the sessions ended.
  CHECK(WaitFor([&] { return fleet.db().Scalar("SELECT count(*) FROM unheld_sessions") == "0"; }, absl::Seconds(5)));
  // Its GPU is free again: a new worker on the node can take a session on it.
  fleet.StartWorker("w2", "1:Sim A100:40");
  v1::Session next;
  CHECK(WaitFor([&] { return fleet.CreateAsAdmin(SleepSpec("3600.3706"), &next).ok(); }, absl::Seconds(15)));
}

TEST_CASE("a SIGKILLed worker leaves no grandchild behind, even with the session hibernated", "[e2e][faults]") {
  LocalFleet fleet;
  fleet.StartSingleNode("2");
  auto stub = fleet.AdminSessions();
  auto create = [&](const std::string& script) {
    v1::CreateSessionRequest req;
    req.set_wait_for_running(true);
    req.mutable_spec()->add_command("/bin/sh");
    req.mutable_spec()->add_command("-c");
    req.mutable_spec()->add_command(script);
    v1::Session s;
    grpc::ClientContext ctx;
    REQUIRE(stub->CreateSession(&ctx, req, &s).ok());
    REQUIRE(s.phase() == v1::SESSION_PHASE_RUNNING);
    return s;
  };
  // Shells whose children are the worker's grandchildren.
  create("sleep 3600.3434 & sleep 3600.3434 & wait");
  v1::Session frozen = create("sleep 3600.3802 & wait");
  REQUIRE(WaitFor([] { return PidsWithCmdline("sleep 3600.3434").size() >= 2 &&
                              PidsWithCmdline("sleep 3600.3802").size() >= 1; }, absl::Seconds(5)));
  grpc::ClientContext ctx;
  v1::HibernateSessionRequest hib;
  hib.set_id(frozen.id());
  v1::Session hibernated;
  REQUIRE(stub->HibernateSession(&ctx, hib, &hibernated).ok());
  REQUIRE(hibernated.phase() == v1::SESSION_PHASE_HIBERNATED);

  fleet.worker().Signal(SIGKILL);
  CHECK(WaitFor([] { return PidsWithCmdline("sleep 3600.3434").empty(); }, absl::Seconds(5)));
  CHECK(WaitFor([] { return PidsWithCmdline("sleep 3600.3802").empty(); }, absl::Seconds(5)));
}

}  // namespace gantry::testing

namespace gantry::testing {

TEST_CASE("a worker frozen past the offline deadline keeps its sessions when it resumes", "[e2e][faults]") {
  LocalFleet fleet;  // Worker heartbeats every 1 s; offline after 3 missed.
  fleet.StartSingleNode("1");
  v1::CreateSessionRequest req;
  req.set_wait_for_running(true);
  *req.mutable_spec() = SleepSpec("3600.9898");
  v1::Session s;
  grpc::ClientContext ctx;
  REQUIRE(fleet.AdminSessions()->CreateSession(&ctx, req, &s).ok());
  auto pids = PidsWithCmdline("sleep 3600.9898");
  REQUIRE(pids.size() == 1);

  fleet.worker().Signal(SIGSTOP);
  // Offline within 4 s with default settings.
  bool offline = WaitFor([&] {
    return fleet.controller().Log().find("worker w1 offline") != std::string::npos;
  }, absl::Seconds(4));
  CHECK(offline);
  fleet.worker().Signal(SIGCONT);
  // It reconnects and re-reports the session, which never stopped.
  bool back = WaitFor([&] {
    return fleet.controller().Log().find("worker w1 connected with 1 running session") != std::string::npos;
  }, absl::Seconds(10));
  INFO(fleet.controller().Log());
  CHECK(back);
  CHECK(PidsWithCmdline("sleep 3600.9898") == pids);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(fleet.db().Scalar("SELECT phase FROM sessions WHERE id = '" + s.id() + "'") == "RUNNING");
}

}  // namespace gantry::testing
