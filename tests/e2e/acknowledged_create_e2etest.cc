// CreateSession without wait_for_running, through a real fleet: answered SCHEDULED as soon as
// the session and its GPU reservation are committed, then started, every later phase reaching
// the client through WatchSession; the start carries the create's request id to the node.
#include <grpcpp/client_context.h>

#include <catch2/catch.hpp>

#include <vector>

#include "absl/strings/match.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

// Every version of the session WatchSession sends until `until` (or the end of the watch).
std::vector<v1::Session> WatchUntil(LocalFleet& fleet, const std::string& id, v1::SessionPhase until) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::WatchSessionRequest w;
  w.set_id(id);
  auto reader = fleet.AdminSessions()->WatchSession(&ctx, w);
  std::vector<v1::Session> seen;
  v1::Session update;
  while (reader->Read(&update)) {
    seen.push_back(update);
    if (update.phase() == until) {
      ctx.TryCancel();
      break;
    }
  }
  (void)reader->Finish();
  return seen;
}

}  // namespace

TEST_CASE("CreateSession answers SCHEDULED once durable and WatchSession follows it to RUNNING", "[e2e][placement]") {
  LocalFleet fleet;
  fleet.StartSingleNode("1");
  v1::CreateSessionRequest req;
  *req.mutable_spec() = SleepSpec("3600.6363", 1);
  req.set_request_id("acknowledged-1");
  v1::Session s;
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-request-id", "ack-e2e-7f3a");
    REQUIRE(fleet.AdminSessions()->CreateSession(&ctx, req, &s).ok());
  }
  CHECK(s.phase() == v1::SESSION_PHASE_SCHEDULED);
  CHECK_FALSE(s.controller_id().empty());
  CHECK(s.worker_id().empty());  // Not started yet when answered.
  // Durable, its GPU reserved: a second one-GPU create finds no room, and writes nothing.
  auto& db = fleet.db();
  CHECK(db.Scalar("SELECT gpu_count FROM sessions WHERE id = '" + s.id() + "'") == "1");
  {
    v1::CreateSessionRequest more = req;
    more.set_request_id("acknowledged-2");
    v1::Session refused;
    grpc::ClientContext ctx;
    CHECK(fleet.AdminSessions()->CreateSession(&ctx, more, &refused).error_code() ==
          grpc::StatusCode::RESOURCE_EXHAUSTED);
    CHECK(db.Scalar("SELECT count(*) FROM sessions") == "1");
  }

  std::vector<v1::Session> seen = WatchUntil(fleet, s.id(), v1::SESSION_PHASE_RUNNING);
  REQUIRE_FALSE(seen.empty());
  const v1::Session& running = seen.back();
  CHECK(running.phase() == v1::SESSION_PHASE_RUNNING);
  CHECK(running.worker_id() == "node1/w1");
  CHECK(running.gpu_uuids_size() == 1);
  CHECK(running.version() > s.version());
  CHECK(PidsWithCmdline("sleep 3600.6363").size() == 1);
  CHECK(db.Scalar("SELECT string_agg(to_phase, ',' ORDER BY id) FROM session_events WHERE session_id = '" + s.id() +
                  "'") == "PENDING,SCHEDULED,RUNNING");
  // The start ran after the answer, yet the controller's log names the create's request.
  CHECK(WaitFor([&] { return absl::StrContains(fleet.controller().Log(), "request=ack-e2e-7f3a"); },
                absl::Seconds(5)));

  // A retry with its request_id: the same session, as it stands now, started once.
  {
    v1::Session again;
    grpc::ClientContext ctx;
    REQUIRE(fleet.AdminSessions()->CreateSession(&ctx, req, &again).ok());
    CHECK(again.id() == s.id());
    CHECK(again.phase() == v1::SESSION_PHASE_RUNNING);
  }
  CHECK(PidsWithCmdline("sleep 3600.6363").size() == 1);
  CHECK(db.Scalar("SELECT count(*) FROM sessions") == "1");
}

TEST_CASE("an acknowledged create whose command cannot start ends FAILED with the worker's reason",
          "[e2e][placement]") {
  LocalFleet fleet;
  fleet.StartSingleNode("1");
  v1::CreateSessionRequest req;
  req.mutable_spec()->add_command("/no/such/program-8282");
  req.mutable_spec()->mutable_resources()->mutable_gpus()->set_count(1);
  v1::Session s;
  {
    grpc::ClientContext ctx;
    REQUIRE(fleet.AdminSessions()->CreateSession(&ctx, req, &s).ok());
  }
  CHECK(s.phase() == v1::SESSION_PHASE_SCHEDULED);
  std::vector<v1::Session> seen = WatchUntil(fleet, s.id(), v1::SESSION_PHASE_FAILED);
  REQUIRE_FALSE(seen.empty());
  CHECK(seen.back().phase() == v1::SESSION_PHASE_FAILED);
  INFO(seen.back().message());
  CHECK(absl::StrContains(seen.back().message(), "/no/such/program-8282"));
  // Its GPU is free again, once the worker has said so: a session that can start takes it.
  fleet.WaitUntilSchedulable(1);
  v1::CreateSessionRequest next;
  *next.mutable_spec() = SleepSpec("3600.6464", 1);
  next.set_wait_for_running(true);
  v1::Session placed;
  grpc::ClientContext ctx;
  grpc::Status st = fleet.AdminSessions()->CreateSession(&ctx, next, &placed);
  INFO(st.error_message());
  REQUIRE(st.ok());
  CHECK(placed.phase() == v1::SESSION_PHASE_RUNNING);
}

}  // namespace gantry::testing
