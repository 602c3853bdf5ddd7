// Hibernate and wake really stop and resume the session's processes (checked in /proc), keep
// its GPUs, and go through the state machine.
#include <grpcpp/client_context.h>

#include <catch2/catch.hpp>

#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

// The state letter from /proc/PID/stat: R, S, T (stopped), Z...
char ProcState(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  std::getline(in, line);
  auto p = line.rfind(')');
  return p == std::string::npos || p + 2 >= line.size() ? '?' : line[p + 2];
}

template <typename Request, typename Method>
grpc::Status Call(v1::SessionService::Stub& stub, Method method, const std::string& id,
                  v1::Session* out) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  Request req;
  req.set_id(id);
  return (stub.*method)(&ctx, req, out);
}

}  // namespace

TEST_CASE("hibernate stops the process group and wake resumes it", "[e2e]") {
  LocalFleet fleet;
  fleet.StartSingleNode("1");
  auto stub = fleet.AdminSessions();
  v1::CreateSessionRequest req;
  req.set_wait_for_running(true);
  // A shell with a child: the whole group must stop, not only its leader.
  *req.mutable_spec() = ShellSpec("sleep 3600.2323 & wait");
  req.mutable_spec()->mutable_resources()->mutable_gpus()->set_count(1);
  v1::Session s;
  {
    grpc::ClientContext ctx;
    REQUIRE(stub->CreateSession(&ctx, req, &s).ok());
  }
  REQUIRE(s.phase() == v1::SESSION_PHASE_RUNNING);
  // The shell's own command line carries the marker too; the child is the one named sleep.
  pid_t child = 0;
  REQUIRE(WaitFor([&] {
    for (pid_t p : PidsWithCmdline("sleep 3600.2323")) {
      std::ifstream comm(absl::StrCat("/proc/", p, "/comm"));
      std::string name;
      comm >> name;
      if (name == "sleep") child = p;
    }
    return child != 0;
  }, absl::Seconds(5)));

  v1::Session hibernated;
  grpc::Status st = Call<v1::HibernateSessionRequest>(*stub, &v1::SessionService::Stub::HibernateSession,
                                                      s.id(), &hibernated);
  INFO(st.error_message() << "\n" << fleet.controller().Log());
  REQUIRE(st.ok());
  CHECK(hibernated.phase() == v1::SESSION_PHASE_HIBERNATED);
  CHECK(hibernated.gpu_uuids_size() == 1);  // Still reserved.
  CHECK(WaitFor([&] { return ProcState(child) == 'T'; }, absl::Seconds(2)));
  CHECK(fleet.db().Scalar("SELECT phase FROM sessions WHERE id = '" + s.id() + "'") == "HIBERNATED");

  // Hibernating again is a no-op; waking twice is not an error either; RUNNING can't be woken.
  v1::Session again;
  CHECK(Call<v1::HibernateSessionRequest>(*stub, &v1::SessionService::Stub::HibernateSession, s.id(), &again).ok());
  CHECK(again.version() == hibernated.version());

  v1::Session woken;
  REQUIRE(Call<v1::WakeSessionRequest>(*stub, &v1::SessionService::Stub::WakeSession, s.id(), &woken).ok());
  CHECK(woken.phase() == v1::SESSION_PHASE_RUNNING);
  CHECK(WaitFor([&] { char c = ProcState(child); return c == 'S' || c == 'R'; }, absl::Seconds(2)));

  // Deleting a hibernated session works (it is continued, then terminated).
  REQUIRE(Call<v1::HibernateSessionRequest>(*stub, &v1::SessionService::Stub::HibernateSession, s.id(), &again).ok());
  v1::Session deleted;
  REQUIRE(Call<v1::DeleteSessionRequest>(*stub, &v1::SessionService::Stub::DeleteSession, s.id(), &deleted).ok());
  CHECK(deleted.phase() == v1::SESSION_PHASE_TERMINATED);
  INFO("worker log:\n" << fleet.worker().Log());
  CHECK(WaitFor([] { return PidsWithCmdline("sleep 3600.2323").empty(); }, absl::Seconds(5)));
  CHECK(fleet.db().Scalar("SELECT string_agg(to_phase, ',' ORDER BY id) FROM session_events "
                          "WHERE session_id = '" + s.id() + "'") ==
        "PENDING,SCHEDULED,RUNNING,HIBERNATED,RUNNING,HIBERNATED,TERMINATING,TERMINATED");

  // Terminal sessions can be neither hibernated nor woken.
  v1::Session out;
  CHECK(Call<v1::WakeSessionRequest>(*stub, &v1::SessionService::Stub::WakeSession, s.id(), &out)
            .error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(Call<v1::HibernateSessionRequest>(*stub, &v1::SessionService::Stub::HibernateSession, s.id(), &out)
            .error_code() == grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_CASE("a session idle past its idle_timeout is hibernated by its worker", "[e2e]") {
  LocalFleet fleet;
  fleet.StartSingleNode("1");
  auto stub = fleet.AdminSessions();
  v1::CreateSessionRequest req;
  req.set_wait_for_running(true);
  // Talks for a second and a half, then falls silent.
  *req.mutable_spec() = ShellSpec("for i in 1 2 3 4 5 6; do echo $i; sleep 0.25; done; exec sleep 3600.2424");
  req.mutable_spec()->mutable_idle_timeout()->set_seconds(1);
  v1::Session s;
  grpc::ClientContext ctx;
  REQUIRE(stub->CreateSession(&ctx, req, &s).ok());
  auto phase = [&] { return fleet.db().Scalar("SELECT phase FROM sessions WHERE id = '" + s.id() + "'"); };
  // Still talking: not idle.
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  CHECK(phase() == "RUNNING");
  bool hibernated = WaitFor([&] { return phase() == "HIBERNATED"; }, absl::Seconds(5));
  INFO(fleet.worker().Log());
  REQUIRE(hibernated);
  CHECK(fleet.db().Scalar("SELECT message FROM sessions WHERE id = '" + s.id() + "'").find("idle") !=
        std::string::npos);
  auto pids = PidsWithCmdline("sleep 3600.2424");
  REQUIRE(pids.size() == 1);
  CHECK(ProcState(pids[0]) == 'T');
}

}  // namespace gantry::testing
