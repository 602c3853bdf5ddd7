// StreamLogs from the client through the API server and controller to the worker's log file:
// tail, follow, the end of a session, refusals, and bounded memory under a slow reader.
#include <grpcpp/client_context.h>

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

v1::Session Run(LocalFleet& fleet, const std::string& script) {
  v1::CreateSessionRequest req;
  req.set_wait_for_running(true);
  req.mutable_spec()->add_command("/bin/sh");
  req.mutable_spec()->add_command("-c");
  req.mutable_spec()->add_command(script);
  v1::Session s;
  grpc::ClientContext ctx;
  REQUIRE(fleet.AdminSessions()->CreateSession(&ctx, req, &s).ok());
  REQUIRE(s.phase() == v1::SESSION_PHASE_RUNNING);
  return s;
}

struct Read {
  std::vector<std::string> lines;
  grpc::Status status;
};

Read ReadLogs(LocalFleet& fleet, const std::string& id, int tail, bool follow, size_t stop_after = 0) {
  auto stub = fleet.AdminSessions();
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::StreamLogsRequest req;
  req.set_id(id);
  req.set_tail_lines(tail);
  req.set_follow(follow);
  auto reader = stub->StreamLogs(&ctx, req);
  Read out;
  v1::LogEntry e;
  while (reader->Read(&e)) {
    out.lines.push_back(e.message());
    if (stop_after > 0 && out.lines.size() >= stop_after) {
      ctx.TryCancel();
      break;
    }
  }
  out.status = reader->Finish();
  return out;
}

}  // namespace

TEST_CASE("logs: tail, everything, and following until the session ends", "[e2e][logs]") {
  LocalFleet fleet;
  fleet.StartSingleNode("2");
  v1::Session s = Run(fleet, "for i in $(seq 1 50); do echo line $i; done; sleep 3600");
  REQUIRE(WaitFor([&] { return ReadLogs(fleet, s.id(), 0, false).lines.size() == 50; }, absl::Seconds(5)));

  Read tail = ReadLogs(fleet, s.id(), 5, false);
  REQUIRE(tail.status.ok());
  CHECK(tail.lines == std::vector<std::string>{"line 46", "line 47", "line 48", "line 49", "line 50"});
  Read all = ReadLogs(fleet, s.id(), 0, false);
  REQUIRE(all.lines.size() == 50);
  CHECK(all.lines.front() == "line 1");

  // Following a session as it writes, until it ends: the stream ends by itself.
  v1::Session ticker = Run(fleet, "for i in $(seq 1 8); do echo tick $i; sleep 0.2; done");
  Read followed = ReadLogs(fleet, ticker.id(), 0, true);
  INFO(followed.status.error_message());
  CHECK(followed.status.ok());
  REQUIRE(followed.lines.size() == 8);
  CHECK(followed.lines.back() == "tick 8");

  // A client that hangs up on a following stream cancels it.
  Read cut = ReadLogs(fleet, s.id(), 2, true, 2);
  CHECK(cut.lines == std::vector<std::string>{"line 49", "line 50"});
  CHECK(cut.status.error_code() == grpc::StatusCode::CANCELLED);
}

TEST_CASE("logs: 1000 followed logs park no thread in the API server, the controller or the worker, and each ends "
          "on hang-up",
          "[e2e][logs]") {
  constexpr int kFollowers = 1000;
  LocalFleet fleet;
  fleet.api_env["GANTRY_MAX_STREAMS_PER_CLIENT"] = std::to_string(kFollowers + 10);
  fleet.StartSingleNode("1");
  v1::Session s = Run(fleet, "echo ready; exec sleep 3600.7272");
  auto stub = fleet.AdminSessions();
  struct Follower {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReader<v1::LogEntry>> reader;
  };
  auto follow = [&](Follower& f) {
    v1::StreamLogsRequest req;
    req.set_id(s.id());
    req.set_follow(true);
    f.reader = stub->StreamLogs(&f.ctx, req);
    v1::LogEntry first;
    REQUIRE(f.reader->Read(&first));  // Open end to end.
    CHECK(first.message() == "ready");
  };
  // Idle: one followed and hung up, so whatever the servers start on first use exists.
  {
    Follower warm;
    follow(warm);
    warm.ctx.TryCancel();
    CHECK(warm.reader->Finish().error_code() == grpc::StatusCode::CANCELLED);
  }
  const int idle_api = ThreadCount(fleet.api().pid()), idle_controller = ThreadCount(fleet.controller().pid()),
            idle_worker = ThreadCount(fleet.worker().pid());
  std::vector<std::unique_ptr<Follower>> followers;
  for (int i = 0; i < kFollowers; ++i) {
    followers.push_back(std::make_unique<Follower>());
    follow(*followers.back());
  }
  const int open_api = ThreadCount(fleet.api().pid()), open_controller = ThreadCount(fleet.controller().pid()),
            open_worker = ThreadCount(fleet.worker().pid());
  INFO("threads with " << kFollowers << " logs followed: gantry-api " << idle_api << " -> " << open_api
                       << ", gantry-controller " << idle_controller << " -> " << open_controller
                       << ", gantry-worker " << idle_worker << " -> " << open_worker);
  CHECK(open_api - idle_api <= 8);
  CHECK(open_controller - idle_controller <= 8);
  CHECK(open_worker - idle_worker <= 8);
  for (auto& f : followers) f->ctx.TryCancel();
  int cancelled = 0;
  for (auto& f : followers) cancelled += f->reader->Finish().error_code() == grpc::StatusCode::CANCELLED;
  CHECK(cancelled == kFollowers);
}

TEST_CASE("logs: refusals say why", "[e2e][logs]") {
  LocalFleet fleet;
  fleet.StartSingleNode("1");
  v1::Session s = Run(fleet, "echo hi; sleep 3600");
  CHECK(ReadLogs(fleet, s.id(), -1, false).status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(ReadLogs(fleet, "00000000-0000-0000-0000-000000000000", 0, false).status.error_code() ==
        grpc::StatusCode::NOT_FOUND);
  auto bob = v1::SessionService::NewStub(fleet.ChannelWithCert(fleet.pki().Issue("user", "bob")));
  grpc::ClientContext ctx;
  v1::StreamLogsRequest req;
  req.set_id(s.id());
  auto reader = bob->StreamLogs(&ctx, req);
  v1::LogEntry e;
  CHECK_FALSE(reader->Read(&e));
  CHECK(reader->Finish().error_code() == grpc::StatusCode::NOT_FOUND);
  // A session whose command does not exist.
  v1::CreateSessionRequest bad;
  bad.set_wait_for_running(true);
  bad.mutable_spec()->add_command("/no/such/thing");
  v1::Session failed;
  grpc::ClientContext create_ctx;
  REQUIRE(fleet.AdminSessions()->CreateSession(&create_ctx, bad, &failed).ok());
  REQUIRE(failed.phase() == v1::SESSION_PHASE_FAILED);
  // Its log says why it never ran.
  Read why = ReadLogs(fleet, failed.id(), 0, false);
  CHECK(why.status.ok());
  REQUIRE(why.lines.size() == 1);
  CHECK(why.lines[0].find("/no/such/thing") != std::string::npos);
}

TEST_CASE("logs: 100 MB read by a slow client keeps every hop's memory bounded", "[e2e][logs]") {
  LocalFleet fleet;
  fleet.MeasureMemory();
  fleet.StartApi();
  fleet.StartController();
  // The whole 100 MB stays on disk: a cap above it (the default, 64 MiB, would rotate it away).
  fleet.StartWorker("w1", "1", 0, {"--session-log-max-bytes", "268435456"});
  fleet.WaitUntilSchedulable(1);
  // 10,000 numbered lines of about 10 KB: 100 MB.
  v1::Session s = Run(fleet,
                      "awk 'BEGIN { x = \"x\"; while (length(x) < 10000) x = x x; x = substr(x, 1, 10000);"
                      " for (i = 0; i < 10000; i++) printf \"%06d %s\\n\", i, x }'; sleep 3600");
  std::string log_path = fleet.dir().Sub("sessions-w1/" + s.id() + ".log");
  REQUIRE(WaitFor([&] {
    std::ifstream in(log_path, std::ios::ate | std::ios::binary);
    return in && in.tellg() >= 100070000;
  }, absl::Seconds(30)));
  const LocalFleet::Rss before = fleet.ResidentKib();

  auto stub = fleet.AdminSessions();
  grpc::ClientContext ctx;
  v1::StreamLogsRequest req;
  req.set_id(s.id());
  auto reader = stub->StreamLogs(&ctx, req);
  v1::LogEntry e;
  REQUIRE(reader->Read(&e));
  CHECK(e.message().rfind("000000 ", 0) == 0);
  // The slow part: the client stops reading. Upstream must stall, not buffer 100 MB.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  fleet.CheckGrowthBelow(before, 32 * 1024);  // while stalled

  // Then it reads everything, in order.
  int expected = 1;
  size_t bytes = e.message().size();
  bool in_order = true;
  while (reader->Read(&e)) {
    int n = -1;
    (void)absl::SimpleAtoi(e.message().substr(0, 6), &n);
    if (n != expected) in_order = false;
    ++expected;
    bytes += e.message().size();
  }
  CHECK(reader->Finish().ok());
  CHECK(in_order);
  CHECK(expected == 10000);
  CHECK(bytes == 10000u * 10007u);
}


TEST_CASE("logs: a session writing 10x its log cap uses at most the cap on disk, keeps its newest output, and its log "
          "goes after the retention",
          "[e2e][logs]") {
  LocalFleet fleet;
  fleet.StartApi();
  fleet.StartController();
  fleet.StartWorker("w1", "1", 0, {"--session-log-max-bytes", "1048576", "--session-log-retention", "3s"});
  fleet.WaitUntilSchedulable(1);
  // About 10.9 MB of numbered lines, then a last one; then it stays running.
  v1::Session s = Run(fleet, "seq 1 1500000; echo the-end; exec sleep 3600.3814");
  const std::string log = fleet.dir().Sub("sessions-w1") + "/" + s.id() + ".log";
  auto file_size = [](const std::string& path) -> int64_t {
    struct stat st;
    return stat(path.c_str(), &st) == 0 ? st.st_size : 0;
  };
  REQUIRE(WaitFor([&] {
    std::ifstream in(log);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.find("the-end\n") != std::string::npos;
  }, absl::Seconds(30)));
  const int64_t on_disk = file_size(log) + file_size(log + ".1");
  INFO("on disk: " << on_disk);
  CHECK(on_disk <= 1048576);
  CHECK(on_disk >= 1048576 / 2);

  // The newest output is served; reading from the start says what the cap dropped.
  Read tail = ReadLogs(fleet, s.id(), 2, false);
  REQUIRE(tail.status.ok());
  REQUIRE(tail.lines.size() == 2);
  CHECK(tail.lines[0] == "1500000");
  CHECK(tail.lines[1] == "the-end");
  Read first = ReadLogs(fleet, s.id(), 0, false, 1);
  REQUIRE_FALSE(first.lines.empty());
  CHECK(first.lines[0].find("bytes of output dropped: this session's log is capped at 1048576 bytes") !=
        std::string::npos);

  // Ended: its log is removed after the retention (3 s), from the disk and the worker's list.
  grpc::ClientContext ctx;
  v1::DeleteSessionRequest del;
  del.set_id(s.id());
  v1::Session deleted;
  REQUIRE(fleet.AdminSessions()->DeleteSession(&ctx, del, &deleted).ok());
  CHECK(WaitFor([&] { return access(log.c_str(), F_OK) != 0 && access((log + ".1").c_str(), F_OK) != 0; },
                absl::Seconds(15)));
  INFO(fleet.worker().Log());
  CHECK(fleet.worker().Log().find("removed the logs of 1 ended session(s)") != std::string::npos);
}

}  // namespace gantry::testing
