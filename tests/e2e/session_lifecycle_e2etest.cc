// The walking skeleton end to end: client -> gantry-api (PostgreSQL) -> gantry-controller ->
// gantry-worker -> process, over mTLS on loopback, checked in the database and in /proc.
#include <grpcpp/client_context.h>

#include <unistd.h>

#include <catch2/catch.hpp>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

grpc::Status Create(v1::SessionService::Stub& stub, const v1::CreateSessionRequest& req,
                    v1::Session* out) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return stub.CreateSession(&ctx, req, out);
}

std::string Q(const std::string& id) { return "'" + id + "'"; }

}  // namespace

TEST_CASE("a session runs on a worker with its GPUs and is gone after delete", "[e2e]") {
  LocalFleet fleet;
  fleet.StartSingleNode("2:Simulated A100:40", 2);
  auto stub = fleet.AdminSessions();

  const std::string marker = "3600.1717";
  v1::CreateSessionRequest req;
  req.set_wait_for_running(true);
  *req.mutable_spec() = SleepSpec(marker, 2);
  v1::Session session;
  grpc::Status status = Create(*stub, req, &session);
  INFO(status.error_message() << "\napi:\n" << fleet.api().Log() << "\ncontroller:\n"
                              << fleet.controller().Log());
  REQUIRE(status.ok());
  // RUNNING is stored once the worker reported the process started; nobody polled.
  CHECK(session.phase() == v1::SESSION_PHASE_RUNNING);
  CHECK(session.worker_id() == "node1/w1");
  CHECK(session.node_id() == "node1");
  CHECK(session.gpu_uuids_size() == 2);
  CHECK(session.owner() == "admin/ops");
  CHECK(fleet.db().Scalar("SELECT phase FROM sessions WHERE id = " + Q(session.id())) == "RUNNING");
  CHECK(fleet.db().Scalar("SELECT jsonb_array_length(gpu_uuids) FROM sessions WHERE id = " +
                          Q(session.id())) == "2");

  // The process really runs, in its own process group, seeing exactly its GPUs.
  auto pids = PidsWithCmdline("sleep " + marker);
  REQUIRE(pids.size() == 1);
  std::string environ;
  {
    std::ifstream in(absl::StrCat("/proc/", pids[0], "/environ"), std::ios::binary);
    environ.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::string gpus = session.gpu_uuids(0) + "," + session.gpu_uuids(1);
  CHECK(environ.find("CUDA_VISIBLE_DEVICES=" + gpus + '\0') != std::string::npos);
  CHECK(environ.find("NVIDIA_VISIBLE_DEVICES=" + gpus + '\0') != std::string::npos);
  CHECK(environ.find("GANTRY_JOIN_TOKEN") == std::string::npos);  // No secrets leak in.
  CHECK(getpgid(pids[0]) == pids[0]);

  // GetSession and ListSessions see it.
  {
    grpc::ClientContext ctx;
    v1::GetSessionRequest get;
    get.set_id(session.id());
    v1::Session got;
    REQUIRE(stub->GetSession(&ctx, get, &got).ok());
    CHECK(got.phase() == v1::SESSION_PHASE_RUNNING);
    grpc::ClientContext list_ctx;
    v1::ListSessionsResponse listed;
    REQUIRE(stub->ListSessions(&list_ctx, v1::ListSessionsRequest(), &listed).ok());
    REQUIRE(listed.sessions_size() == 1);
    CHECK(listed.sessions(0).id() == session.id());
  }

  grpc::ClientContext del_ctx;
  v1::DeleteSessionRequest del;
  del.set_id(session.id());
  v1::Session deleted;
  REQUIRE(stub->DeleteSession(&del_ctx, del, &deleted).ok());
  CHECK(deleted.phase() == v1::SESSION_PHASE_TERMINATED);
  CHECK(PidsWithCmdline("sleep " + marker).empty());
  CHECK(fleet.db().Scalar("SELECT phase FROM sessions WHERE id = " + Q(session.id())) == "TERMINATED");
  CHECK(fleet.db().Scalar(
            "SELECT string_agg(to_phase, ',' ORDER BY id) FROM session_events WHERE session_id = " +
            Q(session.id())) == "PENDING,SCHEDULED,RUNNING,TERMINATING,TERMINATED");
  CHECK_FALSE(fleet.db().Scalar("SELECT ended_at FROM sessions WHERE id = " + Q(session.id())).empty());

  // Deleting again is harmless and changes nothing.
  grpc::ClientContext again_ctx;
  v1::Session again;
  REQUIRE(stub->DeleteSession(&again_ctx, del, &again).ok());
  CHECK(again.version() == deleted.version());
}

TEST_CASE("CreateSession is idempotent per owner on request_id", "[e2e]") {
  LocalFleet fleet;
  fleet.StartSingleNode("2");
  auto stub = fleet.AdminSessions();
  v1::CreateSessionRequest req;
  req.set_wait_for_running(true);
  req.set_request_id("retry-me");
  *req.mutable_spec() = SleepSpec("3600.2121");
  v1::Session first, second;
  REQUIRE(Create(*stub, req, &first).ok());
  REQUIRE(Create(*stub, req, &second).ok());
  CHECK(first.id() == second.id());
  CHECK(fleet.db().Scalar("SELECT count(*) FROM sessions") == "1");
  CHECK(PidsWithCmdline("sleep 3600.2121").size() == 1);
}

TEST_CASE("a process that exits by itself is recorded with its exit code", "[e2e]") {
  LocalFleet fleet;
  fleet.StartSingleNode("1");
  auto stub = fleet.AdminSessions();
  v1::CreateSessionRequest req;
  req.set_wait_for_running(true);
  *req.mutable_spec() = ShellSpec("sleep 0.5; exit 3");
  v1::Session session;
  REQUIRE(Create(*stub, req, &session).ok());
  CHECK(session.phase() == v1::SESSION_PHASE_RUNNING);
  // The worker reports the exit; the controller pushes it; the API stores it.
  bool failed = WaitFor([&] {
    return fleet.db().Scalar("SELECT phase FROM sessions WHERE id = " + Q(session.id())) == "FAILED";
  }, absl::Seconds(10));
  INFO(fleet.controller().Log());
  REQUIRE(failed);
  CHECK(fleet.db().Scalar("SELECT message FROM sessions WHERE id = " + Q(session.id())) ==
        "process exited with code 3");
  // Its GPU is free again: a new one-GPU session fits on the one-GPU worker.
  fleet.WaitUntilSchedulable(1);
  v1::CreateSessionRequest next;
  next.set_wait_for_running(true);
  *next.mutable_spec() = SleepSpec("3600.3131");
  v1::Session s2;
  REQUIRE(Create(*stub, next, &s2).ok());
  CHECK(s2.phase() == v1::SESSION_PHASE_RUNNING);
}

TEST_CASE("a command that does not exist fails with the reason instead of hanging", "[e2e]") {
  LocalFleet fleet;
  fleet.StartSingleNode("1");
  auto stub = fleet.AdminSessions();
  v1::CreateSessionRequest req;
  req.set_wait_for_running(true);
  req.mutable_spec()->add_command("/no/such/program");
  req.mutable_spec()->mutable_resources()->mutable_gpus()->set_count(1);
  v1::Session session;
  REQUIRE(Create(*stub, req, &session).ok());
  CHECK(session.phase() == v1::SESSION_PHASE_FAILED);
  CHECK(session.message().find("/no/such/program") != std::string::npos);
  CHECK(fleet.db().Scalar("SELECT phase FROM sessions WHERE id = " + Q(session.id())) == "FAILED");
  // The GPU was released: the same one-GPU worker takes the next session.
  fleet.WaitUntilSchedulable(1);
  v1::CreateSessionRequest ok;
  ok.set_wait_for_running(true);
  *ok.mutable_spec() = SleepSpec("3600.4141");
  v1::Session s2;
  REQUIRE(Create(*stub, ok, &s2).ok());
  CHECK(s2.phase() == v1::SESSION_PHASE_RUNNING);
}

TEST_CASE("users see and touch only their own sessions", "[e2e]") {
  LocalFleet fleet;
  fleet.StartSingleNode("2");
  auto alice = v1::SessionService::NewStub(fleet.ChannelWithCert(fleet.pki().Issue("user", "alice")));
  auto bob = v1::SessionService::NewStub(fleet.ChannelWithCert(fleet.pki().Issue("user", "bob")));
  v1::CreateSessionRequest req;
  req.set_wait_for_running(true);
  *req.mutable_spec() = SleepSpec("3600.3806");
  v1::Session mine;
  grpc::Status created = Create(*alice, req, &mine);
  INFO(created.error_code() << ": " << created.error_message() << "\n" << fleet.api().Log() << fleet.controller().Log()
                            << fleet.worker().Log());
  REQUIRE(created.ok());
  CHECK(mine.owner() == "user/alice");

  grpc::ClientContext get_ctx;
  v1::GetSessionRequest get;
  get.set_id(mine.id());
  v1::Session seen;
  CHECK(bob->GetSession(&get_ctx, get, &seen).error_code() == grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext del_ctx;
  v1::DeleteSessionRequest del;
  del.set_id(mine.id());
  CHECK(bob->DeleteSession(&del_ctx, del, &seen).error_code() == grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext list_ctx;
  v1::ListSessionsResponse listed;
  REQUIRE(bob->ListSessions(&list_ctx, v1::ListSessionsRequest(), &listed).ok());
  CHECK(listed.sessions_size() == 0);
  CHECK(PidsWithCmdline("sleep 3600.3806").size() == 1);  // Bob's delete touched nothing.
}

}  // namespace gantry::testing
