// The API server and its database: started while PostgreSQL is down, it runs, says
// NOT_SERVING, answers UNAVAILABLE, and serves once PostgreSQL is up, by itself.
#include <grpcpp/client_context.h>

#include <catch2/catch.hpp>

#include <pqxx/pqxx>

#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/support/invariants.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

int FreePort() {
  std::string out = RunCommand(SourcePath("tools/lib/free-port.sh"));
  return std::stoi(out);
}

grpc::health::v1::HealthCheckResponse::ServingStatus Health(LocalFleet& fleet) {
  auto stub = grpc::health::v1::Health::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops"));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  grpc::health::v1::HealthCheckResponse resp;
  if (!stub->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &resp).ok()) {
    return grpc::health::v1::HealthCheckResponse::UNKNOWN;
  }
  return resp.status();
}

grpc::StatusCode ListCode(LocalFleet& fleet) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ListSessionsResponse out;
  return fleet.AdminSessions()->ListSessions(&ctx, v1::ListSessionsRequest(), &out).error_code();
}

}  // namespace

TEST_CASE("the API server rides out a PostgreSQL that is down, then up, then down again", "[e2e][pg-outage]") {
  LocalFleet fleet;
  TempDir pg_dir;
  int port = FreePort();
  std::string script = SourcePath("tools/lib/throwaway-pg.sh");
  std::string dsn = absl::StrCat("host=127.0.0.1 port=", port, " user=postgres dbname=postgres connect_timeout=2");

  fleet.StartApi(dsn, /*wait_until_serving=*/false);
  // Down: running, NOT_SERVING, UNAVAILABLE with a message saying to retry.
  REQUIRE(WaitFor([&] { return Health(fleet) == grpc::health::v1::HealthCheckResponse::NOT_SERVING; },
                  absl::Seconds(10)));
  CHECK(ListCode(fleet) == grpc::StatusCode::UNAVAILABLE);
  CHECK(fleet.api().Alive());

  // Up: it migrates and serves without a restart.
  RunCommand(absl::StrCat(script, " start ", pg_dir.Sub("pg"), " ", port));
  bool serving = WaitFor([&] {
    return Health(fleet) == grpc::health::v1::HealthCheckResponse::SERVING;
  }, absl::Seconds(20));
  INFO(fleet.api().Log());
  REQUIRE(serving);
  CHECK(ListCode(fleet) == grpc::StatusCode::OK);

  // Down again: UNAVAILABLE, NOT_SERVING; and back.
  RunCommand(absl::StrCat(script, " stop ", pg_dir.Sub("pg")));
  CHECK(WaitFor([&] { return ListCode(fleet) == grpc::StatusCode::UNAVAILABLE; }, absl::Seconds(10)));
  CHECK(WaitFor([&] { return Health(fleet) == grpc::health::v1::HealthCheckResponse::NOT_SERVING; },
                absl::Seconds(10)));
  RunCommand(absl::StrCat(script, " start ", pg_dir.Sub("pg"), " ", port));
  CHECK(WaitFor([&] { return ListCode(fleet) == grpc::StatusCode::OK; }, absl::Seconds(20)));
  CHECK(fleet.api().Alive());
  RunCommand(absl::StrCat(script, " stop ", pg_dir.Sub("pg")));
}

}  // namespace gantry::testing

namespace gantry::testing {

TEST_CASE("PostgreSQL stopped, then SIGKILLed, under load: UNAVAILABLE meanwhile, nothing lost or duplicated",
          "[e2e][pg-outage]") {
  LocalFleet fleet;
  TempDir pg_dir;
  int port = FreePort();
  std::string script = SourcePath("tools/lib/throwaway-pg.sh");
  RunCommand(absl::StrCat(script, " start ", pg_dir.Sub("pg"), " ", port));
  std::string dsn = absl::StrCat("host=127.0.0.1 port=", port, " user=postgres dbname=postgres connect_timeout=2");
  fleet.StartApi(dsn);
  fleet.StartController();
  fleet.StartWorker("w1", "");
  auto scalar = [&](const std::string& q) {
    pqxx::connection conn(dsn);
    pqxx::nontransaction tx(conn);
    return tx.exec(q)[0][0].as<std::string>();
  };
  REQUIRE(WaitFor([&] { return scalar("SELECT count(*) FROM controllers WHERE status = 'healthy'") == "1"; },
                  absl::Seconds(20)));

  // Clients create sessions one after another, each retrying with its request_id until it is
  // acknowledged, as a client of an idempotent API does.
  constexpr int kClients = 4, kEach = 10;
  std::mutex mu;
  std::map<std::string, std::string> acked;  // request_id -> session id
  std::map<grpc::StatusCode, int> codes;
  std::string unexpected;
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      auto stub = fleet.AdminSessions();
      for (int i = 0; i < kEach; ++i) {
        v1::CreateSessionRequest req;
        *req.mutable_spec() = SleepSpec("3600.9292", 0);
        req.set_request_id(absl::StrCat("client", c, "-", i));
        absl::Time give_up = absl::Now() + absl::Seconds(60);
        while (absl::Now() < give_up) {
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
          v1::Session s;
          grpc::Status st = stub->CreateSession(&ctx, req, &s);
          std::lock_guard<std::mutex> lock(mu);
          ++codes[st.error_code()];
          if (st.ok()) {
            acked[req.request_id()] = s.id();
            break;
          }
          if (st.error_code() != grpc::StatusCode::UNAVAILABLE) {
            absl::StrAppend(&unexpected, st.error_code(), ": ", st.error_message(), "\n");
          }
          mu.unlock();
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          mu.lock();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
  }
  // Down in the middle of it, for long enough that every client hits it.
  REQUIRE(WaitFor([&] { std::lock_guard<std::mutex> lock(mu); return acked.size() >= 4; }, absl::Seconds(20)));
  RunCommand(absl::StrCat(script, " stop ", pg_dir.Sub("pg")));
  std::this_thread::sleep_for(std::chrono::seconds(2));
  RunCommand(absl::StrCat(script, " start ", pg_dir.Sub("pg"), " ", port));
  // Then killed outright: SIGKILL to the postmaster, no shutdown at all, crash recovery when it
  // starts again (once its orphaned backends, which notice within a second, are gone).
  REQUIRE(WaitFor([&] { std::lock_guard<std::mutex> lock(mu); return acked.size() >= 20; }, absl::Seconds(60)));
  RunCommand(absl::StrCat("kill -KILL $(head -1 ", pg_dir.Sub("pg/data/postmaster.pid"), ")"));
  std::this_thread::sleep_for(std::chrono::seconds(2));
  REQUIRE(WaitFor([&] {
    return std::system(absl::StrCat(script, " start ", pg_dir.Sub("pg"), " ", port, " >/dev/null 2>&1").c_str()) == 0;
  }, absl::Seconds(20)));
  for (auto& t : clients) t.join();

  INFO(unexpected << fleet.api().Log());
  CHECK(unexpected.empty());
  CHECK(codes[grpc::StatusCode::UNAVAILABLE] > 0);  // The outage was seen, and said so.
  REQUIRE(acked.size() == kClients * kEach);
  // Exactly the acknowledged sessions, once each; all of them run once the controller's
  // reports caught up.
  CHECK(scalar("SELECT count(*) FROM sessions") == std::to_string(kClients * kEach));
  CHECK(scalar("SELECT count(DISTINCT request_id) FROM sessions") == std::to_string(kClients * kEach));
  for (const auto& [request_id, id] : acked) {
    CHECK(scalar("SELECT request_id FROM sessions WHERE id = '" + id + "'") == request_id);
  }
  bool all_running = WaitFor([&] {
    return scalar("SELECT count(*) FROM sessions WHERE phase = 'RUNNING'") == std::to_string(kClients * kEach);
  }, absl::Seconds(20));
  INFO(scalar("SELECT coalesce(string_agg(phase || ' ' || message, E'\\n'), '') FROM sessions WHERE phase <> 'RUNNING'"));
  CHECK(all_running);
  CHECK(PidsWithCmdline("sleep 3600.9292").size() == static_cast<size_t>(kClients * kEach));
  InvariantOptions invariants;
  for (const auto& [request_id, id] : acked) invariants.acknowledged.push_back(id);
  invariants.dsn = dsn;
  RequireInvariants(fleet, invariants);
  RunCommand(absl::StrCat(script, " stop ", pg_dir.Sub("pg")));
}

}  // namespace gantry::testing
