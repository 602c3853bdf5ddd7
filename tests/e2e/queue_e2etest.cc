// Queued creates: a create that asks to queue and does not fit now is stored PENDING, holding
// nothing, and placed when room frees (highest priority first), or FAILED past its
// queue_timeout; the queue lives in PostgreSQL, so it outlives the API server that took it.
#include <grpcpp/client_context.h>
#include <signal.h>

#include <catch2/catch.hpp>

#include <random>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gantry/v1/admin_service.grpc.pb.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

// A create of `gpus` GPUs, queued if `queue`, through the API server on `port` (0: the first).
grpc::Status Create(LocalFleet& fleet, const std::string& marker, int gpus, bool queue, v1::Session* session,
                    const std::string& priority_class = "", int queue_timeout_seconds = 0, int port = 0) {
  v1::CreateSessionRequest request;
  *request.mutable_spec() = SleepSpec(marker, gpus);
  request.mutable_spec()->set_priority_class(priority_class);
  request.set_queue(queue);
  if (queue_timeout_seconds > 0) request.mutable_queue_timeout()->set_seconds(queue_timeout_seconds);
  grpc::ClientContext ctx;
  return fleet.AdminSessions(port)->CreateSession(&ctx, request, session);
}

void Delete(LocalFleet& fleet, const std::string& id, int port = 0) {
  grpc::ClientContext ctx;
  v1::DeleteSessionRequest request;
  request.set_id(id);
  v1::Session deleted;
  REQUIRE(fleet.AdminSessions(port)->DeleteSession(&ctx, request, &deleted).ok());
}

std::string Phase(LocalFleet& fleet, const std::string& id) {
  return fleet.db().Scalar("SELECT phase FROM sessions WHERE id = '" + id + "'");
}

// GPUs held by live sessions (a queued one holds none).
std::string GpusHeld(LocalFleet& fleet) {
  return fleet.db().Scalar(
      "SELECT coalesce(sum(gpu_count), 0) FROM sessions WHERE phase NOT IN ('PENDING', 'TERMINATED', 'FAILED')");
}

}  // namespace

TEST_CASE("queue: a create that does not fit waits PENDING holding nothing and runs once room frees, and one past "
          "its queue_timeout is FAILED saying so",
          "[e2e][queue]") {
  LocalFleet fleet;
  fleet.api_env["GANTRY_QUEUE_DISPATCH_INTERVAL"] = "200ms";
  fleet.StartSingleNode("1");
  v1::Session holder, queued, impatient;
  REQUIRE(Create(fleet, "3600.8151", 1, false, &holder).ok());
  // Without queue: refused, as ever.
  v1::Session refused;
  CHECK(Create(fleet, "3600.8151", 1, false, &refused).error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  grpc::Status s = Create(fleet, "3600.5152", 1, true, &queued);
  INFO(s.error_message());
  REQUIRE(s.ok());
  CHECK(queued.phase() == v1::SESSION_PHASE_PENDING);
  CHECK(absl::StartsWith(queued.message(), "queued: "));
  REQUIRE(Create(fleet, "3600.5153", 1, true, &impatient, "", /*queue_timeout_seconds=*/1).ok());
  CHECK(GpusHeld(fleet) == "1");
  CHECK(fleet.db().Scalar("SELECT count(*) FROM sessions") == "3");  // The refused one left nothing.
  {
    // Its place in the queue, as GetSession shows it: first of the two.
    grpc::ClientContext ctx;
    v1::GetSessionRequest request;
    request.set_id(queued.id());
    v1::Session got;
    REQUIRE(fleet.AdminSessions()->GetSession(&ctx, request, &got).ok());
    REQUIRE(got.conditions_size() == 1);
    CHECK(got.conditions(0).type() == "QueuePosition");
    CHECK(got.conditions(0).message() == "1 of 2");
  }

  REQUIRE(WaitFor([&] { return Phase(fleet, impatient.id()) == "FAILED"; }, absl::Seconds(15)));
  CHECK(absl::StrContains(fleet.db().Scalar("SELECT message FROM sessions WHERE id = '" + impatient.id() + "'"),
                          "past its queue_timeout, and never found room"));
  CHECK(Phase(fleet, queued.id()) == "PENDING");
  CHECK(PidsWithCmdline("sleep 3600.5152").empty());

  Delete(fleet, holder.id());
  REQUIRE(WaitFor([&] { return Phase(fleet, queued.id()) == "RUNNING"; }, absl::Seconds(20)));
  CHECK(PidsWithCmdline("sleep 3600.5152").size() == 1);
  CHECK(fleet.db().Scalar("SELECT message FROM session_events WHERE session_id = '" + queued.id() +
                          "' AND to_phase = 'SCHEDULED'") == "placing on controller node1 from the queue");
}

TEST_CASE("queue: the highest priority goes first, and a lower class waits behind a higher one that does not fit",
          "[e2e][queue]") {
  LocalFleet fleet;
  fleet.api_env["GANTRY_QUEUE_DISPATCH_INTERVAL"] = "200ms";
  fleet.StartSingleNode("4");
  auto admin = v1::AdminService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops"));
  for (const auto& [name, value] : std::vector<std::pair<std::string, int>>{{"low", 100}, {"high", 1000}}) {
    grpc::ClientContext ctx;
    v1::CreatePriorityClassRequest request;
    request.set_name(name);
    request.set_value(value);
    v1::PriorityClass created;
    REQUIRE(admin->CreatePriorityClass(&ctx, request, &created).ok());
  }
  v1::Session first_half, second_half, small_low, big_high, small_high;
  REQUIRE(Create(fleet, "3600.5161", 2, false, &first_half).ok());
  REQUIRE(Create(fleet, "3600.5161", 2, false, &second_half).ok());
  // Queued in this order: a low one of one GPU, a high one of all four, a high one of one.
  REQUIRE(Create(fleet, "3600.5162", 1, true, &small_low, "low").ok());
  REQUIRE(Create(fleet, "3600.5163", 4, true, &big_high, "high").ok());
  REQUIRE(Create(fleet, "3600.5164", 1, true, &small_high, "high").ok());
  // Two GPUs free: the small high one goes by the big one of its own class; the low one, though
  // it came first and a GPU is left, does not take room a higher class waits for. (It would
  // have been placed in the same round as the small high one.)
  Delete(fleet, first_half.id());
  REQUIRE(WaitFor([&] { return Phase(fleet, small_high.id()) == "RUNNING"; }, absl::Seconds(20)));
  CHECK(Phase(fleet, small_low.id()) == "PENDING");
  CHECK(Phase(fleet, big_high.id()) == "PENDING");
  // All free: the big high one, then (once it ends) the low one.
  Delete(fleet, second_half.id());
  Delete(fleet, small_high.id());
  REQUIRE(WaitFor([&] { return Phase(fleet, big_high.id()) == "RUNNING"; }, absl::Seconds(20)));
  CHECK(Phase(fleet, small_low.id()) == "PENDING");
  Delete(fleet, big_high.id());
  REQUIRE(WaitFor([&] { return Phase(fleet, small_low.id()) == "RUNNING"; }, absl::Seconds(20)));
}

TEST_CASE("queue: a session queued through an API server that is then SIGKILLed is placed by the replica that "
          "leads after it",
          "[e2e][queue]") {
  LocalFleet fleet;
  fleet.api_env["GANTRY_QUEUE_DISPATCH_INTERVAL"] = "200ms";
  fleet.api_env["GANTRY_HEALTH_CHECK_INTERVAL"] = "300ms";
  fleet.StartApi();
  // Before the controller, so that it knows both API servers and heartbeats on to the second.
  const int replica = fleet.StartApiReplica();
  fleet.StartController();
  fleet.StartWorker("w1", "1");
  fleet.WaitUntilSchedulable(1);
  v1::Session holder, queued;
  REQUIRE(Create(fleet, "3600.5171", 1, false, &holder).ok());
  REQUIRE(Create(fleet, "3600.5172", 1, true, &queued).ok());
  fleet.api().Signal(SIGKILL);
  Delete(fleet, holder.id(), replica);
  REQUIRE(WaitFor([&] { return Phase(fleet, queued.id()) == "RUNNING"; }, absl::Seconds(30)));
  CHECK(PidsWithCmdline("sleep 3600.5172").size() == 1);
  CHECK(fleet.db().Scalar("SELECT count(*) FROM session_events WHERE session_id = '" + queued.id() +
                          "' AND to_phase = 'SCHEDULED'") == "1");
}

TEST_CASE("queue: a create over its team's quota waits, and runs once the team is under it", "[e2e][queue][quota]") {
  LocalFleet fleet;
  fleet.api_env["GANTRY_QUEUE_DISPATCH_INTERVAL"] = "200ms";
  fleet.StartSingleNode("2");
  auto admin = v1::AdminService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops"));
  {
    grpc::ClientContext ctx;
    v1::SetQuotaRequest request;
    request.set_team("admin/ops");  // The admin's own team of one.
    request.set_max_gpus(1);
    v1::Quota quota;
    REQUIRE(admin->SetQuota(&ctx, request, &quota).ok());
  }
  v1::Session first, second;
  REQUIRE(Create(fleet, "3600.5191", 1, false, &first).ok());
  REQUIRE(Create(fleet, "3600.5192", 1, true, &second).ok());
  CHECK(second.phase() == v1::SESSION_PHASE_PENDING);
  CHECK(absl::StrContains(second.message(), "quota of team \"admin/ops\": max_gpus is 1"));
  // A GPU is free, but not to this team: it waits.
  CHECK(Phase(fleet, second.id()) == "PENDING");
  Delete(fleet, first.id());
  REQUIRE(WaitFor([&] { return Phase(fleet, second.id()) == "RUNNING"; }, absl::Seconds(20)));
  CHECK(fleet.db().Scalar("SELECT sum(gpu_count) FROM sessions WHERE phase NOT IN ('PENDING', 'TERMINATED', "
                          "'FAILED')") == "1");
}

TEST_CASE("queue: bad requests are refused naming the field, and write nothing", "[e2e][queue]") {
  LocalFleet fleet;
  fleet.StartSingleNode("1");
  auto stub = fleet.AdminSessions();
  auto create = [&](const std::function<void(v1::CreateSessionRequest*)>& set) {
    v1::CreateSessionRequest request;
    *request.mutable_spec() = SleepSpec("3600.5181", 1);
    set(&request);
    grpc::ClientContext ctx;
    v1::Session session;
    return stub->CreateSession(&ctx, request, &session);
  };
  grpc::Status s = create([](v1::CreateSessionRequest* r) {
    r->set_queue(true);
    r->set_wait_for_running(true);
  });
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(absl::StartsWith(s.error_message(), "queue: "));
  s = create([](v1::CreateSessionRequest* r) {
    r->set_queue(true);
    r->mutable_queue_timeout()->set_seconds(8 * 24 * 3600);
  });
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(absl::StartsWith(s.error_message(), "queue_timeout: "));
  s = create([](v1::CreateSessionRequest* r) { r->mutable_queue_timeout()->set_seconds(60); });
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(absl::StartsWith(s.error_message(), "queue_timeout: "));
  CHECK(fleet.db().Scalar("SELECT count(*) FROM sessions") == "0");
}

}  // namespace gantry::testing

namespace gantry::testing {

TEST_CASE("queue: two teams with 50 queued sessions each on 8 GPUs get GPU-seconds in proportion to their weights, "
          "within 10%",
          "[e2e][queue][quota]") {
  LocalFleet fleet;
  fleet.api_env["GANTRY_QUEUE_DISPATCH_INTERVAL"] = "100ms";
  fleet.StartSingleNode("8");
  auto admin = v1::AdminService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops"));
  // heavy (alice) weighs 2, light (bob) 1; no limits.
  for (const auto& [user, team, weight] : std::vector<std::tuple<std::string, std::string, int>>{
           {"alice", "heavy", 2}, {"bob", "light", 1}}) {
    grpc::ClientContext ctx;
    v1::SetPrincipalTeamRequest member;
    member.set_principal("user/" + user);
    member.set_team(team);
    v1::SetPrincipalTeamResponse done;
    REQUIRE(admin->SetPrincipalTeam(&ctx, member, &done).ok());
    grpc::ClientContext ctx2;
    v1::SetQuotaRequest quota;
    quota.set_team(team);
    quota.set_weight(weight);
    v1::Quota set;
    REQUIRE(admin->SetQuota(&ctx2, quota, &set).ok());
    CHECK(set.weight() == weight);
  }
  auto alice = v1::SessionService::NewStub(fleet.ChannelWithCert(fleet.pki().Issue("user", "alice")));
  auto bob = v1::SessionService::NewStub(fleet.ChannelWithCert(fleet.pki().Issue("user", "bob")));

  // The fleet full, then 50 queued each, alternating, each ending by itself after 1..2.5 s.
  v1::Session holder;
  REQUIRE(Create(fleet, "3600.5201", 8, false, &holder).ok());
  std::mt19937 random(20261207);
  for (int i = 0; i < 100; ++i) {
    v1::CreateSessionRequest request;
    *request.mutable_spec() = SleepSpec(absl::StrCat(1.0 + static_cast<double>(random() % 16) / 10), 1);
    request.set_queue(true);
    grpc::ClientContext ctx;
    v1::Session queued;
    grpc::Status s = (i % 2 == 0 ? alice : bob)->CreateSession(&ctx, request, &queued);
    INFO(s.error_message());
    REQUIRE(s.ok());
    REQUIRE(queued.phase() == v1::SESSION_PHASE_PENDING);
  }
  Delete(fleet, holder.id());
  const std::string start = fleet.db().Scalar("SELECT ended_at::text FROM sessions WHERE id = '" + holder.id() + "'");
  // Measured while both teams wait: until either's queue is empty.
  std::string end;
  REQUIRE(WaitFor([&] {
    end = fleet.db().Scalar(
        "SELECT CASE WHEN count(DISTINCT team) < 2 THEN now()::text ELSE '' END FROM sessions WHERE phase = 'PENDING'");
    return !end.empty();
  }, absl::Seconds(120)));
  auto gpu_seconds = [&](const std::string& team) {
    double out = 0;
    REQUIRE(absl::SimpleAtod(
        fleet.db().Scalar("SELECT coalesce(sum(gpu_count * extract(epoch FROM least(coalesce(ended_at, '" + end +
                          "'::timestamptz), '" + end + "'::timestamptz) - greatest(placed_at, '" + start +
                          "'::timestamptz))), 0) FROM sessions WHERE team = '" + team + "' AND placed_at < '" + end +
                          "'::timestamptz"),
        &out));
    return out;
  };
  const double heavy = gpu_seconds("heavy"), light = gpu_seconds("light");
  const double share = heavy / (heavy + light);
  INFO("GPU-seconds: heavy " << heavy << ", light " << light << "; heavy's share " << share << " of the 2/3 due");
  CHECK(share >= 2.0 / 3 * 0.9);
  CHECK(share <= 2.0 / 3 * 1.1);
  // And the queue kept the GPUs busy meanwhile (a dispatch every 100 ms, an exit reported in
  // milliseconds, against sessions of 1..2.5 s): more than half of 8 over the window.
  double window = 0;
  REQUIRE(absl::SimpleAtod(fleet.db().Scalar("SELECT extract(epoch FROM '" + end + "'::timestamptz - '" + start +
                                             "'::timestamptz)"),
                           &window));
  CHECK(heavy + light >= 0.5 * 8 * window);
}

}  // namespace gantry::testing
