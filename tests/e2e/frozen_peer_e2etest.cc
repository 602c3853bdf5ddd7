// A frozen peer stalls only itself. A worker stopped (SIGSTOP) while the controller is writing
// to it fills its stream's flow-control window, so the controller's next write to it blocks.
// That write must hold up nothing else: the other worker's log lines, the controller's
// heartbeats to the API server, new sessions and invokes elsewhere all go on, and the frozen
// worker is declared gone by its missed heartbeats (6 s here), not only when the transport's
// keepalive gives up on it (15 s): a blocked gRPC write does not end when its call is
// cancelled, and one made under the lock that closing the stream needed held everything up.
#include <grpcpp/client_context.h>
#include <signal.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "common/keepalive.h"
#include "gantry/v1/invoke_service.grpc.pb.h"
#include "tests/support/client_threads.h"
#include "tests/support/invariants.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

struct Invoked {
  grpc::Status status;
  absl::Duration took;
};

Invoked Invoke(LocalFleet& fleet, const std::string& capability, const std::string& payload,
               absl::Duration deadline) {
  const absl::Time start = absl::Now();
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(start + deadline));
  v1::InvokeRequest req;
  req.set_capability(capability);
  req.set_payload(payload);
  auto stub = v1::InvokeService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops"));
  auto reader = stub->Invoke(&ctx, req);
  v1::InvokeChunk chunk;
  while (reader->Read(&chunk)) {
  }
  grpc::Status status = reader->Finish();
  return {status, absl::Now() - start};
}

int Occurrences(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("a worker frozen mid-stream stalls only its own streams, and is gone within the heartbeat bound",
          "[e2e][faults]") {
  LocalFleet fleet;
  // Worker heartbeats every 2 s, offline after 3 missed: 6 s, time enough for the requests below
  // to reach the frozen worker's stream even in the sanitized build, and short of the 15 s in
  // which the transport's keepalive would drop it.
  fleet.controller_env["GANTRY_WORKER_HEARTBEAT_INTERVAL"] = "2s";
  fleet.StartApi();
  fleet.StartController();
  // Only w1 serves demo/hold, so requests for it are written to w1's stream; w2 has the GPU
  // and serves demo/echo.
  fleet.StartWorkerServing("w1", "", "demo/hold 1.0.0 exec cat\n");
  fleet.StartWorkerServing("w2", "1", "demo/echo 1.0.0 exec cat\n");
  fleet.WaitUntilSchedulable(1);
  REQUIRE(WaitFor([&] {
    return fleet.db().Scalar("SELECT count(*) FROM controllers WHERE capabilities @> '[{\"name\": \"demo/hold\"}]' "
                             "AND capabilities @> '[{\"name\": \"demo/echo\"}]'") == "1";
  }, absl::Seconds(20)));
  v1::Session ticking;
  REQUIRE(fleet.CreateAsAdmin(ShellSpec("while :; do echo tick; sleep 0.1; done", 1), &ticking).ok());
  REQUIRE(ticking.worker_id() == "node1/w2");

  // w2's session's log, followed through the API server for the whole test.
  std::atomic<int> lines{0};
  grpc::ClientContext follow_ctx;
  std::thread follower([&] {
    v1::StreamLogsRequest req;
    req.set_id(ticking.id());
    req.set_follow(true);
    auto reader = fleet.AdminSessions()->StreamLogs(&follow_ctx, req);
    v1::LogEntry entry;
    while (reader->Read(&entry)) ++lines;
    (void)reader->Finish();
  });
  // Ended on every way out of the test: a failed REQUIRE with it joinable would abort the run.
  absl::Cleanup stop_following = [&] {
    follow_ctx.TryCancel();
    follower.join();
  };
  REQUIRE(WaitFor([&] { return lines.load() >= 5; }, absl::Seconds(10)));

  fleet.worker(0).Signal(SIGSTOP);
  const absl::Time frozen_at = absl::Now();
  // Requests for w1 while it cannot read: 6 payloads of 3 MB fill its window and the sockets'
  // buffers, so a write to its stream blocks.
  ClientThreads flood;  // each a single call, which ends by its deadline
  std::vector<Invoked> flooded(6);
  const std::string payload(3 << 20, 'x');
  for (size_t i = 0; i < flooded.size(); ++i) {
    flood.Start([&, i] { flooded[i] = Invoke(fleet, "demo/hold", payload, absl::Seconds(60)); });
  }

  // Meanwhile everything else flows: w2's log lines, invokes on w2, the controller's heartbeats.
  const int before = lines.load();
  Invoked echo = Invoke(fleet, "demo/echo", "still here", absl::Seconds(10));
  INFO(echo.status.error_message());
  CHECK(echo.status.ok());
  CHECK(echo.took < absl::Seconds(3));
  // w1 is declared gone by its missed heartbeats, not by the transport's keepalive.
  const bool gone = WaitFor([&] {
    return absl::StrContains(fleet.controller().Log(), "worker w1 offline");
  }, absl::Seconds(15));
  INFO(fleet.controller().Log());
  REQUIRE(gone);
  const absl::Duration gone_after = absl::Now() - frozen_at;
  CHECK(gone_after < absl::Seconds(12));
  CHECK(lines.load() >= before + 10);  // 100 ms apart: dozens in the time it took.
  CHECK(fleet.db().Scalar("SELECT (last_heartbeat > now() - interval '3 seconds')::text FROM controllers") == "true");
  CHECK(fleet.db().Scalar("SELECT status FROM controllers") == "healthy");
  // Each request for w1 ends with a clear status once its worker is gone, long before its
  // deadline: UNAVAILABLE for those written to its stream. One that reached the controller only
  // after w1 was gone is NOT_FOUND (no worker serves demo/hold): in the sanitized build, 3 MB
  // requests can take that long; in the plain build all six reach w1 first.
  flood.Join();
  int written_to_w1 = 0;
  for (const Invoked& r : flooded) {
    INFO(r.status.error_code() << ": " << r.status.error_message());
    CHECK((r.status.error_code() == grpc::StatusCode::UNAVAILABLE ||
           r.status.error_code() == grpc::StatusCode::NOT_FOUND));
    CHECK(r.took < absl::Seconds(20));
    written_to_w1 += r.status.error_code() == grpc::StatusCode::UNAVAILABLE;
  }
  CHECK(written_to_w1 >= (kSanitizedBuild ? 1 : 6));
  // A new session on the fleet is placed at once (w2's GPU is taken: one without a GPU).
  v1::Session next;
  grpc::Status created = fleet.CreateAsAdmin(SleepSpec("3600.6262", 0), &next);
  INFO(created.error_message());
  CHECK(created.ok());
  CHECK(next.worker_id() == "node1/w2");

  fleet.worker(0).Signal(SIGCONT);
  // It reconnects: "connected" a second time.
  CHECK(WaitFor([&] { return Occurrences(fleet.controller().Log(), "worker w1 connected") == 2; },
                absl::Seconds(20)));
  std::move(stop_following).Invoke();
  RequireInvariants(fleet, {ticking.id(), next.id()});
}

}  // namespace gantry::testing

namespace gantry::testing {

// The transport's own bound, where nothing above it would notice: a worker's stream to a
// controller that froze carries no answers the worker waits for, and its writes go into socket
// buffers, so only the keepalive's unanswered ping ends it (common/keepalive.h).
TEST_CASE("a controller frozen mid-stream is noticed by its worker within the keepalive bound and its sessions live on",
          "[e2e][faults]") {
  LocalFleet fleet;
  // The API server takes a controller silent this long for gone only after 30 s, as in
  // production (6 checks 5 s apart), not after the suite's 6 x 300 ms: the freeze here is about
  // the worker's stream, and the session must outlive it.
  fleet.api_env["GANTRY_OFFLINE_AFTER"] = "100";
  fleet.StartApi();
  fleet.StartController();
  fleet.StartWorker("w1", "");
  REQUIRE(WaitFor([&] { return absl::StrContains(fleet.worker().Log(), "connected to controller"); },
                  absl::Seconds(20)));
  v1::Session session;
  REQUIRE(fleet.CreateAsAdmin(SleepSpec("3600.7474", 0), &session).ok());
  REQUIRE(session.phase() == v1::SESSION_PHASE_RUNNING);

  fleet.controller().Signal(SIGSTOP);
  const absl::Time frozen_at = absl::Now();
  const absl::Duration bound = absl::Milliseconds(kKeepaliveTimeMs + kKeepaliveTimeoutMs);
  const bool noticed = WaitFor([&] {
    return absl::StrContains(fleet.worker().Log(), "stream to controller ended");
  }, bound + absl::Seconds(10));
  const absl::Duration noticed_after = absl::Now() - frozen_at;
  fleet.controller().Signal(SIGCONT);
  INFO("noticed after " << absl::FormatDuration(noticed_after) << "\n" << fleet.worker().Log());
  REQUIRE(noticed);
  CHECK(noticed_after < bound + absl::Seconds(2));  // the timer fires on time; a loaded machine reads the log late
  // And it comes back by itself once the controller runs again.
  REQUIRE(WaitFor([&] { return Occurrences(fleet.worker().Log(), "connected to controller") == 2; },
                  absl::Seconds(20)));
  // The session's process ran on through all of it, and the controller, finding the stream ended
  // and the heartbeats overdue when it ran again, took the worker for silent, not dead: it kept
  // the session for the worker's return instead of failing it.
  INFO(fleet.controller().Log() << fleet.api().Log()
       << fleet.db().Scalar("SELECT string_agg(to_phase || ': ' || message, ' | ' ORDER BY id) FROM session_events "
                            "WHERE session_id = '" + session.id() + "'"));
  CHECK(PidsWithCmdline("sleep 3600.7474").size() == 1);
  CHECK(fleet.db().Scalar("SELECT phase FROM sessions WHERE id = '" + session.id() + "'") == "RUNNING");
  CHECK(fleet.db().Scalar("SELECT count(*) FROM session_events WHERE session_id = '" + session.id() +
                          "' AND to_phase = 'FAILED'") == "0");
  CHECK(absl::StrContains(fleet.controller().Log(), "session(s) wait"));
}

}  // namespace gantry::testing
