// Teams and quotas: creates racing through two API server replicas onto two controllers never
// take a team past its quota (PostgreSQL is checked all the while), every refusal names the
// quota, and refusals and bad requests leave nothing written.
#include <grpcpp/client_context.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gantry/v1/admin_service.grpc.pb.h"
#include "tests/support/gantryctl_runner.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

constexpr char kMarker[] = "3600.8323";

// Each team's limit (all three kinds), the user in it, and what one of its sessions asks for.
struct TeamSpec {
  std::string team, user;
  int allowed;  // Sessions of one GPU its quota admits.
};
const std::vector<TeamSpec> kTeams = {{"red", "alice", 7}, {"blue", "bob", 5}, {"green", "carol", 9}};

std::unique_ptr<v1::AdminService::Stub> Admin(LocalFleet& fleet) {
  return v1::AdminService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops"));
}

void SetUpTeams(LocalFleet& fleet) {
  auto admin = Admin(fleet);
  for (const TeamSpec& t : kTeams) {
    grpc::ClientContext ctx;
    v1::SetPrincipalTeamRequest request;
    request.set_principal("user/" + t.user);
    request.set_team(t.team);
    v1::SetPrincipalTeamResponse response;
    REQUIRE(admin->SetPrincipalTeam(&ctx, request, &response).ok());
  }
  // One limit of each kind, each the one that binds: GPUs, sessions, GPUs of a model.
  std::vector<v1::SetQuotaRequest> quotas(3);
  quotas[0].set_team("red");
  quotas[0].set_max_gpus(7);
  quotas[1].set_team("blue");
  quotas[1].set_max_sessions(5);
  quotas[1].set_max_gpus(100);
  quotas[2].set_team("green");
  (*quotas[2].mutable_max_gpus_by_model())["a100"] = 9;
  quotas[2].set_max_gpu_memory_bytes(int64_t{40} << 34);  // 640 GiB: not the one that binds.
  for (const auto& request : quotas) {
    grpc::ClientContext ctx;
    v1::Quota quota;
    grpc::Status s = admin->SetQuota(&ctx, request, &quota);
    INFO(s.error_message());
    REQUIRE(s.ok());
    CHECK(quota.team() == request.team());
  }
}

// What each team's live sessions hold, as PostgreSQL has it: team -> {sessions, GPUs}.
std::map<std::string, std::pair<int, int>> HeldByTeam(const TestDatabase& db) {
  std::map<std::string, std::pair<int, int>> out;
  const std::string rows = db.Scalar(
      "SELECT coalesce(string_agg(team || ':' || n || ':' || g, ','), '') FROM (SELECT team, count(*) n, "
      "sum(gpu_count) g FROM sessions WHERE phase NOT IN ('TERMINATED', 'FAILED') GROUP BY team) t");
  for (absl::string_view row : absl::StrSplit(rows, ',', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(row, ':');
    int n = 0, g = 0;
    if (f.size() == 3 && absl::SimpleAtoi(f[1], &n) && absl::SimpleAtoi(f[2], &g)) out[f[0]] = {n, g};
  }
  return out;
}

struct Outcomes {
  std::mutex mu;
  std::map<std::string, int> ok;  // By team.
  std::map<std::string, int> refused;
  std::vector<std::string> ids;
  std::string unexpected;  // Anything but OK and a refusal naming the team's quota.
};

// `count` creates at once, spread over the teams' users, alternating between the replicas and
// between the controllers (named: left to choose, a burst may all go to one, whose
// reservation lock would then serialise a team's creates as well as its own lock).
void CreateConcurrently(LocalFleet& fleet, int replica_port, int count, const std::string& tag, Outcomes* out) {
  const std::vector<std::string> controllers = absl::StrSplit(
      fleet.db().Scalar("SELECT string_agg(id::text, ',' ORDER BY name) FROM controllers"), ',');
  REQUIRE(controllers.size() == 2);
  std::vector<std::unique_ptr<v1::SessionService::Stub>> stubs;
  for (int i = 0; i < count; ++i) {
    const TeamSpec& t = kTeams[static_cast<size_t>(i) % kTeams.size()];
    const std::string cert = fleet.pki().dir() + "/user-" + t.user;  // As Pki::Issue names it.
    stubs.push_back(v1::SessionService::NewStub(i % 2 == 0 ? fleet.ChannelWithCert(cert)
                                                           : fleet.ChannelTo(replica_port, cert)));
  }
  std::promise<void> go;
  std::shared_future<void> start = go.get_future().share();
  std::vector<std::thread> threads;
  for (int i = 0; i < count; ++i) {
    threads.emplace_back([&, i] {
      const TeamSpec& t = kTeams[static_cast<size_t>(i) % kTeams.size()];
      v1::CreateSessionRequest request;
      *request.mutable_spec() = SleepSpec(kMarker, 1);
      request.set_request_id(absl::StrCat(tag, "-", i));
      request.set_controller_id(controllers[static_cast<size_t>(i / 2) % 2]);
      v1::Session session;
      start.wait();
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
      grpc::Status s = stubs[static_cast<size_t>(i)]->CreateSession(&ctx, request, &session);
      std::lock_guard<std::mutex> lock(out->mu);
      const bool names_quota = s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
                               absl::StrContains(s.error_message(), absl::StrCat("quota of team \"", t.team, "\": "));
      if (s.ok()) {
        ++out->ok[t.team];
        out->ids.push_back(session.id());
      } else if (names_quota) {
        ++out->refused[t.team];
      } else {
        absl::StrAppend(&out->unexpected, t.team, " ", s.error_code(), ": ", s.error_message(), "\n");
      }
    });
  }
  go.set_value();
  for (auto& t : threads) t.join();
}

// Watches PostgreSQL while `run` runs: the most each team's live sessions ever held.
std::map<std::string, std::pair<int, int>> PeakWhile(LocalFleet& fleet, const std::function<void()>& run) {
  std::atomic<bool> done{false};
  std::map<std::string, std::pair<int, int>> peak;
  std::thread watcher([&] {
    while (!done.load()) {
      for (const auto& [team, held] : HeldByTeam(fleet.db())) {
        peak[team].first = std::max(peak[team].first, held.first);
        peak[team].second = std::max(peak[team].second, held.second);
      }
    }
  });
  run();
  done = true;
  watcher.join();
  for (const auto& [team, held] : HeldByTeam(fleet.db())) {
    peak[team].first = std::max(peak[team].first, held.first);
    peak[team].second = std::max(peak[team].second, held.second);
  }
  return peak;
}

}  // namespace

TEST_CASE("quotas: 200 concurrent creates from 3 teams through 2 replicas onto 2 controllers: no team is ever over "
          "its quota, and every refusal names it",
          "[e2e][quota]") {
  LocalFleet fleet;
  fleet.StartApi();
  fleet.StartController("node1");
  fleet.StartController("node2");
  // 32 GPUs: room for every team's quota, so the quotas are what turns creates away.
  fleet.StartWorker("w1", "16:Sim A100:40", 0);
  fleet.StartWorker("w2", "16:Sim A100:40", 1);
  REQUIRE(WaitFor([&] { return fleet.db().Scalar("SELECT sum(gpus_free) FROM controllers") == "32"; },
                  absl::Seconds(20)));
  const int replica = fleet.StartApiReplica();
  for (const TeamSpec& t : kTeams) fleet.pki().Issue("user", t.user);
  SetUpTeams(fleet);

  Outcomes first;
  auto peak = PeakWhile(fleet, [&] { CreateConcurrently(fleet, replica, 200, "a", &first); });
  INFO(first.unexpected << fleet.api().Log());
  CHECK(first.unexpected.empty());
  for (const TeamSpec& t : kTeams) {
    INFO(t.team);
    CHECK(first.ok[t.team] == t.allowed);
    CHECK(first.ok[t.team] + first.refused[t.team] == (t.team == "green" ? 66 : 67));
    // Never more, at any moment PostgreSQL was looked at.
    CHECK(peak[t.team].second <= t.allowed);
  }
  // Refused creates left nothing: the rows are exactly the acknowledged ones, each charged to
  // its owner's team and model.
  auto& db = fleet.db();
  CHECK(db.Scalar("SELECT count(*) FROM sessions") == std::to_string(first.ids.size()));
  CHECK(db.Scalar("SELECT count(DISTINCT session_id) FROM session_events") == std::to_string(first.ids.size()));
  CHECK(db.Scalar("SELECT count(*) FROM sessions WHERE team = 'red' AND owner = 'user/alice'") == "7");
  CHECK(db.Scalar("SELECT count(*) FROM sessions WHERE gpu_model <> 'Sim A100'") == "0");
  REQUIRE(WaitFor([&] { return PidsWithCmdline(std::string("sleep ") + kMarker).size() == first.ids.size(); },
                  absl::Seconds(60)));

  // Each limit's use, as the admin sees it.
  auto admin = Admin(fleet);
  {
    grpc::ClientContext ctx;
    v1::ListQuotasResponse quotas;
    const grpc::Status listed = admin->ListQuotas(&ctx, v1::ListQuotasRequest(), &quotas);
    INFO("ListQuotas: " << listed.error_code() << " " << listed.error_message());
    REQUIRE(listed.ok());
    REQUIRE(quotas.quotas_size() == 3);
    CHECK(quotas.quotas(0).team() == "blue");
    CHECK(quotas.quotas(0).sessions_used() == 5);
    CHECK(quotas.quotas(1).team() == "green");
    CHECK(quotas.quotas(1).gpus_used_by_model().at("a100") == 9);
    CHECK(quotas.quotas(1).gpu_memory_bytes_used() == int64_t{9 * 40} << 30);
    CHECK(quotas.quotas(2).team() == "red");
    CHECK(quotas.quotas(2).gpus_used() == 7);
  }

  // Two of red's sessions end: two more of red's fit, and no more, whichever replica.
  auto stub = fleet.AdminSessions();
  int deleted = 0;
  for (const std::string& id : first.ids) {
    if (deleted == 2 || db.Scalar("SELECT team FROM sessions WHERE id = '" + id + "'") != "red") continue;
    grpc::ClientContext ctx;
    v1::DeleteSessionRequest del;
    del.set_id(id);
    v1::Session gone;
    REQUIRE(stub->DeleteSession(&ctx, del, &gone).ok());
    ++deleted;
  }
  Outcomes second;
  peak = PeakWhile(fleet, [&] { CreateConcurrently(fleet, replica, 30, "b", &second); });
  INFO(second.unexpected);
  CHECK(second.unexpected.empty());
  CHECK(second.ok["red"] == 2);
  CHECK(second.ok["blue"] == 0);
  CHECK(second.ok["green"] == 0);
  for (const TeamSpec& t : kTeams) CHECK(peak[t.team].second <= t.allowed);
}

TEST_CASE("quotas: bad requests, and callers who are not admins, are refused naming why, and nothing is written",
          "[e2e][quota]") {
  LocalFleet fleet;
  fleet.api_env["GANTRY_METRICS_LISTEN"] = "127.0.0.1:0";
  fleet.api_env["GANTRY_METRICS_PORT_FILE"] = fleet.dir().Sub("api-metrics.port");
  fleet.StartSingleNode("2");
  auto admin = Admin(fleet);
  auto call = [&](v1::AdminService::Stub* stub, const v1::SetQuotaRequest& request) {
    grpc::ClientContext ctx;
    v1::Quota quota;
    return stub->SetQuota(&ctx, request, &quota);
  };
  v1::SetQuotaRequest negative;
  negative.set_team("red");
  negative.set_max_gpus(-1);
  grpc::Status s = call(admin.get(), negative);
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(absl::StartsWith(s.error_message(), "max_gpus: "));
  v1::SetQuotaRequest bad_model;
  bad_model.set_team("red");
  (*bad_model.mutable_max_gpus_by_model())["a100"] = -2;
  s = call(admin.get(), bad_model);
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(absl::StartsWith(s.error_message(), "max_gpus_by_model[\"a100\"]: "));
  v1::SetQuotaRequest heavy;
  heavy.set_team("red");
  heavy.set_weight(1001);
  s = call(admin.get(), heavy);
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(absl::StartsWith(s.error_message(), "weight: "));
  v1::SetQuotaRequest bad_team;
  bad_team.set_team("Red Team; DROP TABLE quotas");
  s = call(admin.get(), bad_team);
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(absl::StartsWith(s.error_message(), "team: "));
  // A user may not set one, even for itself.
  fleet.pki().Issue("user", "alice");
  auto alice = v1::AdminService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/user-alice"));
  v1::SetQuotaRequest own;
  own.set_team("user/alice");
  own.set_max_gpus(100);
  CHECK(call(alice.get(), own).error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(fleet.db().Scalar("SELECT count(*) FROM quotas") == "0");
  {
    grpc::ClientContext ctx;
    v1::SetPrincipalTeamRequest request;
    request.set_principal("alice");  // Not a principal: user/alice is.
    request.set_team("red");
    v1::SetPrincipalTeamResponse response;
    s = admin->SetPrincipalTeam(&ctx, request, &response);
    CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(absl::StartsWith(s.error_message(), "principal: "));
  }
  CHECK(fleet.db().Scalar("SELECT count(*) FROM principal_teams") == "0");
  {
    grpc::ClientContext ctx;
    v1::GetQuotaRequest request;
    request.set_team("red");
    v1::Quota quota;
    CHECK(admin->GetQuota(&ctx, request, &quota).error_code() == grpc::StatusCode::NOT_FOUND);
  }

  // A team of one: a principal's own quota binds its sessions, and the refusal leaves nothing.
  REQUIRE(call(admin.get(), [] {
            v1::SetQuotaRequest r;
            r.set_team("user/alice");
            r.set_max_sessions(1);
            return r;
          }()).ok());
  auto sessions = v1::SessionService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/user-alice"));
  for (int i = 0; i < 2; ++i) {
    grpc::ClientContext ctx;
    v1::CreateSessionRequest request;
    *request.mutable_spec() = SleepSpec("3600.8324", 0);
    v1::Session session;
    s = sessions->CreateSession(&ctx, request, &session);
    if (i == 0) {
      CHECK(s.ok());
    } else {
      CHECK(s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
      CHECK(s.error_message().find("quota of team \"user/alice\": max_sessions is 1 and the team holds 1") !=
            std::string::npos);
    }
  }
  CHECK(fleet.db().Scalar("SELECT count(*) FROM sessions") == "1");
  CHECK(fleet.db().Scalar("SELECT team FROM sessions") == "user/alice");
  // The limit and its use, on /metrics.
  const int port = WaitForPortFile(fleet.dir().Sub("api-metrics.port"), absl::Seconds(5));
  REQUIRE(port > 0);
  const std::string metrics = ScrapeMetrics(fleet.pki().ca(), port);
  INFO(metrics);
  CHECK(absl::StrContains(metrics, "gantry_team_quota_limit{team=\"user/alice\",resource=\"sessions\"} 1\n"));
  CHECK(absl::StrContains(metrics, "gantry_team_quota_used{team=\"user/alice\",resource=\"sessions\"} 1\n"));
}

TEST_CASE("gantryctl: teams, quota set, get, list and delete, and API keys for a team", "[e2e][gantryctl][quota]") {
  LocalFleet fleet;
  fleet.StartSingleNode("2");
  Gantryctl ctl(fleet);
  CHECK(ctl({"teams", "set", "user/alice", "red"}).code == 0);
  Ran key = ctl({"apikeys", "create", "--principal", "bob", "--team", "red"});
  CHECK(key.code == 0);
  Ran set = ctl({"quota", "set", "red", "--gpus", "4", "--model", "a100=2"});
  INFO(set.err);
  CHECK(set.code == 0);
  CHECK(absl::StrContains(set.out, "red    0/4    0/-        0/-                  a100 0/2"));
  Ran teams = ctl({"teams"});
  CHECK(absl::StrContains(teams.out, "red    user/alice, user/bob   0/4    0/-"));
  CHECK(absl::StrContains(ctl({"quota", "get", "red", "-o", "json"}).out, "\"maxGpus\": 4"));
  CHECK(absl::StrContains(ctl({"quota", "list"}).out, "red "));
  Ran bad = ctl({"quota", "set", "red", "--gpus", "-3"});
  CHECK(bad.code == 2);
  CHECK(absl::StrContains(bad.err, "--gpus: \"-3\" is not a count"));
  CHECK(ctl({"quota", "delete", "red"}).code == 0);
  CHECK(ctl({"quota", "get", "red"}).code != 0);
  CHECK(ctl({"teams", "unset", "user/alice"}).code == 0);
  CHECK(fleet.db().Scalar("SELECT string_agg(principal, ',') FROM principal_teams") == "user/bob");
}

}  // namespace gantry::testing
