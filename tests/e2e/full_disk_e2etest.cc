// A worker whose log directory is on a full filesystem (a real, tiny tmpfs): the session's log
// file is cut off with a marker, its output goes on in memory, and the session, the worker and
// new sessions carry on.
#include <grpcpp/client_context.h>

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "tests/support/invariants.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

std::vector<std::string> ReadAllLogs(LocalFleet& fleet, const std::string& id, grpc::Status* status) {
  auto stub = fleet.AdminSessions();
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::StreamLogsRequest req;
  req.set_id(id);
  auto reader = stub->StreamLogs(&ctx, req);
  std::vector<std::string> lines;
  v1::LogEntry e;
  while (reader->Read(&e)) lines.push_back(e.message());
  *status = reader->Finish();
  return lines;
}

v1::Session Create(LocalFleet& fleet, const std::string& script) {
  v1::Session s;
  REQUIRE(fleet.CreateAsAdmin(ShellSpec(script), &s).ok());
  REQUIRE(s.phase() == v1::SESSION_PHASE_RUNNING);
  return s;
}

std::string FileContents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("a full log filesystem truncates the log with a marker, and sessions and the worker carry on",
          "[e2e][faults]") {
  LocalFleet fleet;
  const std::string session_dir = fleet.dir().Sub("sessions-w1");
  TmpfsMount tiny(session_dir, 128 * 1024);
  fleet.StartApi();
  fleet.StartController();
  fleet.StartWorker("w1", "1");
  fleet.WaitUntilSchedulable(0);

  // About 600 KB of numbered lines: far more than the filesystem holds, more than the worker's
  // 256 KiB of memory per session too.
  v1::Session big = Create(fleet,
                           "i=0; while [ $i -lt 6000 ]; do printf 'big %05d %0080d\\n' $i 0; i=$((i+1)); done;"
                           " echo big-done; exec sleep 3600");
  grpc::Status status;
  REQUIRE(WaitFor([&] {
    auto lines = ReadAllLogs(fleet, big.id(), &status);
    return !lines.empty() && lines.back() == "big-done";
  }, absl::Seconds(30)));

  // The file holds the beginning, then the marker, and nothing after it.
  const std::string file = FileContents(session_dir + "/" + big.id() + ".log");
  INFO("log file: " << file.size() << " bytes, ends with: " << file.substr(file.size() > 200 ? file.size() - 200 : 0));
  CHECK(file.rfind("big 00000 ", 0) == 0);
  CHECK(absl::EndsWith(file, "[gantry: log file truncated here (No space left on device); later output is kept in memory only]\n"));

  // A reader from the start gets the file, a line saying how much is lost, then the newest output.
  std::vector<std::string> lines = ReadAllLogs(fleet, big.id(), &status);
  REQUIRE(status.ok());
  CHECK(lines.front().rfind("big 00000 ", 0) == 0);
  bool told_lost = false;
  for (const auto& line : lines) told_lost |= absl::StrContains(line, "bytes of output lost: the log file failed (No space left on device)");
  CHECK(told_lost);
  CHECK(lines[lines.size() - 2].rfind("big 05999 ", 0) == 0);

  // The session and the worker carry on, and a new session starts and is heard on the full disk.
  CHECK(fleet.worker().Alive());
  v1::Session small = Create(fleet, "echo hello-from-a-full-disk; exec sleep 3600");
  REQUIRE(WaitFor([&] {
    auto out = ReadAllLogs(fleet, small.id(), &status);
    return !out.empty() && out.back() == "hello-from-a-full-disk";
  }, absl::Seconds(10)));
  for (const auto& id : {big.id(), small.id()}) {
    v1::GetSessionRequest get;
    get.set_id(id);
    v1::Session now;
    grpc::ClientContext ctx;
    REQUIRE(fleet.AdminSessions()->GetSession(&ctx, get, &now).ok());
    CHECK(now.phase() == v1::SESSION_PHASE_RUNNING);
  }
  CHECK(absl::StrContains(fleet.worker().Log(), "the session goes on"));
  RequireInvariants(fleet, {big.id(), small.id()});
}

}  // namespace gantry::testing
