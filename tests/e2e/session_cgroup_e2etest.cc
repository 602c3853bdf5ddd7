// A worker confines each session in its own cgroup v2 where the tree is writable, and says in the
// session's log which of the limits it asked for cannot be enforced. Deleting the session kills
// everything it started, even a process that left its process group.
#include <grpcpp/client_context.h>

#include <catch2/catch.hpp>

#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/support/proc_cgroup.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

std::string SessionLog(LocalFleet& fleet, const std::string& id) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::StreamLogsRequest req;
  req.set_id(id);
  auto reader = fleet.AdminSessions()->StreamLogs(&ctx, req);
  std::string text;
  v1::LogEntry e;
  while (reader->Read(&e)) absl::StrAppend(&text, e.message(), "\n");
  REQUIRE(reader->Finish().ok());
  return text;
}

}  // namespace

TEST_CASE("a session runs in its own cgroup, and limits it cannot have are named in its log", "[e2e]") {
  LocalFleet fleet;
  fleet.StartSingleNode("1");
  v1::CreateSessionRequest req;
  req.set_wait_for_running(true);
  // The background sleep leaves the session's process group, as a daemonising tool would.
  *req.mutable_spec() = ShellSpec("setsid sleep 3600.3805 & echo started; exec sleep 3600.3807");
  req.mutable_spec()->mutable_resources()->set_cpu_millis(500);
  req.mutable_spec()->mutable_resources()->set_memory_bytes(256 << 20);
  v1::Session s;
  grpc::ClientContext ctx;
  REQUIRE(fleet.AdminSessions()->CreateSession(&ctx, req, &s).ok());
  // Until the shell has exec'd, its own command line names both sleeps; until setsid has
  // exec'd, its command line names the first while it is still in the session's group. Wait for
  // two processes, one each, the first out of the session's process group.
  pid_t main_pid = 0, escaped = 0;
  REQUIRE(WaitFor([&] {
    auto first = PidsWithCmdline("sleep 3600.3805"), second = PidsWithCmdline("sleep 3600.3807");
    if (first.size() != 1 || second.size() != 1 || first[0] == second[0]) return false;
    escaped = first[0];
    main_pid = second[0];
    return getpgid(escaped) != getpgid(main_pid);
  }, absl::Seconds(5)));

  std::string worker_log = fleet.worker().Log();
  INFO(worker_log);
  bool confined = absl::StrContains(worker_log, "cgroup v2: sessions in ");
  bool all_enforced = absl::StrContains(worker_log, "CPU and memory limits enforced");
  std::string log = SessionLog(fleet, s.id());
  INFO(log);
  CHECK(absl::StrContains(log, "started"));
  if (all_enforced) {
    CHECK_FALSE(absl::StrContains(log, "not enforced"));
  } else {
    // The worker said why at start-up, and the session's own log says what it did not get.
    CHECK(absl::StrContains(worker_log, "NOT enforced"));
    CHECK(absl::StrContains(log, "not enforced"));
  }
  // The cgroup half needs a writable cgroup v2 tree (root, as in CI): without one the test
  // fails rather than passing half-checked.
  if (!confined) FAIL("cgroup v2 is not writable here, and this test checks that sessions are confined");
  std::string expected = absl::StrCat("/gantry-worker-", fleet.worker().pid(), "/", s.id());
  CHECK(absl::EndsWith(CgroupOf(main_pid), expected));
  CHECK(absl::EndsWith(CgroupOf(escaped), expected));

  grpc::ClientContext del_ctx;
  v1::DeleteSessionRequest del;
  del.set_id(s.id());
  v1::Session deleted;
  REQUIRE(fleet.AdminSessions()->DeleteSession(&del_ctx, del, &deleted).ok());
  CHECK(deleted.phase() == v1::SESSION_PHASE_TERMINATED);
  // The process outside the group went with the session's cgroup.
  CHECK(WaitFor([] { return PidsWithCmdline("sleep 3600.3805").empty(); }, absl::Seconds(5)));
  CHECK(PidsWithCmdline("sleep 3600.3807").empty());
}

}  // namespace gantry::testing
