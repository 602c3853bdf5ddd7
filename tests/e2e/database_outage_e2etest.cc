// The API server and its database: started while PostgreSQL is down, it runs, says
// NOT_SERVING, answers UNAVAILABLE, and serves once PostgreSQL is up, by itself.
#include <grpcpp/client_context.h>
#include <signal.h>

#include <catch2/catch.hpp>

#include <pqxx/pqxx>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/support/client_threads.h"
#include "tests/support/invariants.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

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

// A fleet whose API server uses a PostgreSQL of the test's own, which it may stop, kill or
// freeze: started, with a controller and a CPU-only worker, once the controller is healthy.
// `worker_gpus`: the worker's simulated GPUs; `replica`: whether a second API server runs (its
// port in replica_port), started before the controller so that it knows both.
struct OwnPostgresFleet {
  explicit OwnPostgresFleet(const std::map<std::string, std::string>& api_env = {},
                            const std::string& worker_gpus = "", bool replica = false) {
    RunCommand(absl::StrCat(script, " start ", pg_dir.Sub("pg"), " ", port));
    for (const auto& [k, v] : api_env) fleet.api_env[k] = v;
    fleet.StartApi(dsn);
    if (replica) replica_port = fleet.StartApiReplica(dsn);
    fleet.StartController();
    fleet.StartWorker("w1", worker_gpus);
    REQUIRE(WaitFor([&] { return Scalar("SELECT count(*) FROM controllers WHERE status = 'healthy'") == "1"; },
                    absl::Seconds(20)));
  }
  std::string Scalar(const std::string& q) const {
    pqxx::connection conn(dsn);
    pqxx::nontransaction tx(conn);
    return tx.exec(q)[0][0].as<std::string>();
  }
  // Exactly the acknowledged sessions, once each, all running; the invariants hold.
  void CheckAcknowledged(const std::map<std::string, std::string>& acked, const std::string& marker) {
    const std::string n = std::to_string(acked.size());
    CHECK(Scalar("SELECT count(*) FROM sessions") == n);
    CHECK(Scalar("SELECT count(DISTINCT request_id) FROM sessions") == n);
    for (const auto& [request_id, id] : acked) {
      CHECK(Scalar("SELECT request_id FROM sessions WHERE id = '" + id + "'") == request_id);
    }
    const bool all_running = WaitFor([&] {
      return Scalar("SELECT count(*) FROM sessions WHERE phase = 'RUNNING'") == n;
    }, absl::Seconds(30));
    INFO(Scalar("SELECT coalesce(string_agg(phase || ' ' || message, E'\\n'), '') FROM sessions "
                "WHERE phase <> 'RUNNING'"));
    CHECK(all_running);
    CHECK(PidsWithCmdline("sleep " + marker).size() == acked.size());
    InvariantOptions invariants;
    for (const auto& [request_id, id] : acked) invariants.acknowledged.push_back(id);
    invariants.dsn = dsn;
    RequireInvariants(fleet, invariants);
  }
  void Stop() { RunCommand(absl::StrCat(script, " stop ", pg_dir.Sub("pg"))); }
  void Start() { RunCommand(absl::StrCat(script, " start ", pg_dir.Sub("pg"), " ", port)); }

  LocalFleet fleet;
  TempDir pg_dir;
  const int port = FreePort();
  const std::string script = SourcePath("tools/lib/throwaway-pg.sh");
  const std::string dsn =
      absl::StrCat("host=127.0.0.1 port=", port, " user=postgres dbname=postgres connect_timeout=2");
  int replica_port = 0;
};

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
  OwnPostgresFleet own;
  LocalFleet& fleet = own.fleet;
  const std::string& script = own.script;
  TempDir& pg_dir = own.pg_dir;
  const int port = own.port;

  // Clients create sessions one after another, each retrying with its request_id until it is
  // acknowledged, as a client of an idempotent API does. All of them are acknowledged within
  // 100 s of the start (about 25 s here, 50 s under ASan beside other tests), or the test fails
  // saying what the clients were answered, well inside ctest's timeout.
  constexpr int kClients = 4, kEach = 10;
  const absl::Time give_up = absl::Now() + absl::Seconds(100);
  std::mutex mu;
  std::map<std::string, std::string> acked;  // request_id -> session id
  std::map<grpc::StatusCode, int> codes;
  std::string unexpected;
  ClientThreads clients;
  for (int c = 0; c < kClients; ++c) {
    clients.Start([&, c] {
      auto stub = fleet.AdminSessions();
      for (int i = 0; i < kEach; ++i) {
        v1::CreateSessionRequest req;
        req.set_wait_for_running(true);
        *req.mutable_spec() = SleepSpec("3600.9292", 0);
        req.set_request_id(absl::StrCat("client", c, "-", i));
        while (absl::Now() < give_up && !clients.stopping()) {
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
  clients.Join();

  INFO("acknowledged " << acked.size() << "; UNAVAILABLE answers " << codes[grpc::StatusCode::UNAVAILABLE] << "\n"
                       << unexpected << fleet.api().Log() << fleet.controller().Log());
  CHECK(unexpected.empty());
  CHECK(codes[grpc::StatusCode::UNAVAILABLE] > 0);  // The outage was seen, and said so.
  REQUIRE(acked.size() == kClients * kEach);
  // All of them run once the controller's reports caught up.
  own.CheckAcknowledged(acked, "3600.9292");
  own.Stop();
}

}  // namespace gantry::testing

namespace gantry::testing {
namespace {

// SIGSTOP or SIGCONT to the postmaster and every backend: a server that hangs, not one that
// dies. Its kernel still accepts and acknowledges connections. The postmaster is stopped first
// and continued last: while it is stopped it neither forks a backend nor reaps one, so the
// list of its children holds. A backend that exited between the listing and its signal (before
// the stop) needs none; the postmaster's own signal must land.
void SignalPostgres(const std::string& data_dir, const std::string& signal) {
  const std::string each_child = absl::StrCat("for c in $(pgrep -P $pm); do kill -", signal, " $c 2>/dev/null; done");
  RunCommand(absl::StrCat("pm=$(head -1 ", data_dir, "/postmaster.pid); ",
                          signal == "STOP" ? absl::StrCat("kill -STOP $pm && { ", each_child, "; true; }")
                                           : absl::StrCat(each_child, "; kill -", signal, " $pm")));
}

}  // namespace

TEST_CASE("PostgreSQL frozen for 30 s under 64 clients: each call ends in time with a clear status, threads and "
          "memory stay bounded, nothing acknowledged is lost", "[e2e][pg-outage]") {
  constexpr int kMaxCalls = 32;  // --max-concurrent-calls: half the clients
  OwnPostgresFleet own({{"GANTRY_MAX_CONCURRENT_CALLS", std::to_string(kMaxCalls)}});
  LocalFleet& fleet = own.fleet;
  // The synchronous server's call threads are capped by its quota (the call slots plus 4
  // pollers, common/grpc_server.cc); the others are gRPC's pools and Gantry's own, which must not
  // grow with the calls.
  const std::string kCallThread = "grpcpp_sync_ser";
  const int64_t rss_before = RssKib(fleet.api().pid());
  const int other_threads_before = ThreadCount(fleet.api().pid()) - ThreadCountNamed(fleet.api().pid(), kCallThread);

  // Each client creates sessions one after another, retrying a refused create with its
  // request_id, as a client of an idempotent API does; every call has a 15 s deadline.
  constexpr int kClients = 64, kEach = 2;
  constexpr absl::Duration kDeadline = absl::Seconds(15);
  std::mutex mu;
  std::map<std::string, std::string> acked;  // request_id -> session id
  std::map<grpc::StatusCode, int> codes;
  std::string unexpected;
  absl::Duration longest;
  std::atomic<bool> frozen{false};
  std::atomic<int> calls_while_frozen{0};
  ClientThreads clients;
  for (int c = 0; c < kClients; ++c) {
    clients.Start([&, c] {
      auto stub = fleet.AdminSessions();
      for (int i = 0; i < kEach; ++i) {
        v1::CreateSessionRequest req;
        req.set_wait_for_running(true);
        *req.mutable_spec() = SleepSpec("3600.9293", 0);
        req.set_request_id(absl::StrCat("frozen", c, "-", i));
        const absl::Time give_up = absl::Now() + absl::Seconds(120);
        while (absl::Now() < give_up && !clients.stopping()) {
          grpc::ClientContext ctx;
          ctx.set_deadline(absl::ToChronoTime(absl::Now() + kDeadline));
          v1::Session s;
          const absl::Time start = absl::Now();
          grpc::Status st = stub->CreateSession(&ctx, req, &s);
          const absl::Duration took = absl::Now() - start;
          if (frozen.load()) ++calls_while_frozen;
          std::unique_lock<std::mutex> lock(mu);
          ++codes[st.error_code()];
          longest = std::max(longest, took);
          if (st.ok()) {
            acked[req.request_id()] = s.id();
            break;
          }
          if (st.error_code() != grpc::StatusCode::UNAVAILABLE &&
              st.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) {
            absl::StrAppend(&unexpected, st.error_code(), " after ", absl::FormatDuration(took), ": ",
                            st.error_message(), "\n");
          }
          lock.unlock();
          std::this_thread::sleep_for(std::chrono::milliseconds(200));  // a client's pause before retrying
        }
      }
    });
  }
  REQUIRE(WaitFor([&] { std::lock_guard<std::mutex> lock(mu); return acked.size() >= 16; }, absl::Seconds(30)));

  SignalPostgres(own.pg_dir.Sub("pg/data"), "STOP");
  frozen = true;
  int max_call_threads = 0, max_other_threads = 0;
  int64_t max_rss = 0;
  const absl::Time thaw = absl::Now() + absl::Seconds(30);  // the fault: frozen this long, sampled meanwhile
  while (absl::Now() < thaw) {
    const int call_threads = ThreadCountNamed(fleet.api().pid(), kCallThread);
    max_call_threads = std::max(max_call_threads, call_threads);
    max_other_threads = std::max(max_other_threads, ThreadCount(fleet.api().pid()) - call_threads);
    max_rss = std::max(max_rss, RssKib(fleet.api().pid()));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const int frozen_calls = calls_while_frozen.load();
  frozen = false;
  SignalPostgres(own.pg_dir.Sub("pg/data"), "CONT");
  clients.Join();

  INFO("call threads at most " << max_call_threads << "; other threads " << other_threads_before << " -> at most "
                               << max_other_threads << "; RSS " << rss_before << " KiB -> at most "
                  << max_rss << " KiB; longest call " << absl::FormatDuration(longest) << "; calls while frozen "
                  << frozen_calls << "\n" << unexpected << fleet.api().Log());
  // Every call answered within its deadline, with UNAVAILABLE (the database is not answering)
  // or RESOURCE_EXHAUSTED (every call slot taken), and the clients kept getting answers.
  CHECK(unexpected.empty());
  CHECK(longest < kDeadline);
  CHECK(codes[grpc::StatusCode::UNAVAILABLE] > 0);
  CHECK(frozen_calls > kClients);
  // Threads: one per call slot and poller, not one per waiting call (thousands of calls here).
  // The rest grow only as far as gRPC's own pools do under load: its two executors
  // ("default-executor", "resolver-executor") up to 2 threads per core each, and its timer
  // threads, a few (measured here: +8 on 2 cores, timers 2 -> 5, resolver executor 1 -> 2).
  CHECK(max_call_threads <= kMaxCalls + 4);
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  CHECK(max_other_threads <= other_threads_before + 2 * 2 * cores + 4);
  if (!kSanitizedBuild) CHECK(max_rss - rss_before < 64 * 1024);  // ASan's own memory swamps it
  // After the thaw: exactly the acknowledged sessions, once each, all running.
  REQUIRE(acked.size() == kClients * kEach);
  own.CheckAcknowledged(acked, "3600.9293");
  own.Stop();
}

}  // namespace gantry::testing

namespace gantry::testing {

TEST_CASE("queue: a SIGKILLed API replica and a PostgreSQL restart lose no queued session and place none twice",
          "[e2e][pg-outage][queue]") {
  OwnPostgresFleet own({{"GANTRY_QUEUE_DISPATCH_INTERVAL", "200ms"}}, /*worker_gpus=*/"2", /*replica=*/true);
  LocalFleet& fleet = own.fleet;
  REQUIRE(WaitFor([&] { return own.Scalar("SELECT coalesce(sum(gpus_total), 0) FROM controllers") == "2"; },
                  absl::Seconds(20)));
  auto create = [&](bool queue, const std::string& marker) {
    v1::CreateSessionRequest request;
    *request.mutable_spec() = SleepSpec(marker, 1);
    request.set_queue(queue);
    grpc::ClientContext ctx;
    v1::Session session;
    grpc::Status s = fleet.AdminSessions()->CreateSession(&ctx, request, &session);
    INFO(s.error_message());
    REQUIRE(s.ok());
    return session.id();
  };
  // Through the replica, answered once PostgreSQL is back.
  auto remove = [&](const std::string& id) {
    REQUIRE(WaitFor([&] {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      v1::DeleteSessionRequest request;
      request.set_id(id);
      v1::Session deleted;
      return fleet.AdminSessions(own.replica_port)->DeleteSession(&ctx, request, &deleted).ok();
    }, absl::Seconds(30)));
  };
  const std::vector<std::string> holders = {create(false, "3600.6121"), create(false, "3600.6121")};
  std::vector<std::string> queued;
  for (int i = 0; i < 6; ++i) queued.push_back(create(true, "3600.6122"));
  CHECK(own.Scalar("SELECT count(*) FROM sessions WHERE phase = 'PENDING'") == "6");

  fleet.api().Signal(SIGKILL);
  own.Stop();
  own.Start();
  for (const auto& id : holders) remove(id);
  // Each queued session, as it runs, is deleted to make room for the next.
  std::set<std::string> ran;
  const bool drained = WaitFor([&] {
    for (const auto& id : queued) {
      if (ran.count(id) == 0 && own.Scalar("SELECT phase FROM sessions WHERE id = '" + id + "'") == "RUNNING") {
        ran.insert(id);
        remove(id);
      }
    }
    return ran.size() == queued.size();
  }, absl::Seconds(90));
  INFO(own.Scalar("SELECT coalesce(string_agg(id || ' ' || phase || ' ' || message, E'\\n'), '') FROM sessions "
                  "WHERE phase <> 'TERMINATED'"));
  REQUIRE(drained);
  for (const auto& id : queued) {
    CHECK(own.Scalar("SELECT count(*) FROM session_events WHERE session_id = '" + id +
                     "' AND from_phase = 'PENDING' AND to_phase = 'SCHEDULED'") == "1");
  }
  InvariantOptions invariants;
  invariants.acknowledged = queued;
  invariants.dsn = own.dsn;
  RequireInvariants(fleet, invariants);
}

}  // namespace gantry::testing
