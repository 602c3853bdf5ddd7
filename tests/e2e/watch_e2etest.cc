// WatchSession: the current state first, then every change made through any replica, ending at
// the terminal phase.
#include <grpcpp/client_context.h>

#include <catch2/catch.hpp>

#include <mutex>
#include <thread>

#include <grpcpp/create_channel.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/tls.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {

TEST_CASE("a watch on one replica sees changes made through another, and ends when the session does",
          "[e2e][watch]") {
  LocalFleet fleet;
  fleet.StartSingleNode("1");
  // A second replica on the same database.
  int port = fleet.StartApiReplica();
  auto on_replica = fleet.AdminSessions(port);
  auto on_first = fleet.AdminSessions();

  v1::CreateSessionRequest req;
  req.set_wait_for_running(true);
  *req.mutable_spec() = SleepSpec("3600.3535");
  v1::Session s;
  {
    grpc::ClientContext ctx;
    REQUIRE(on_first->CreateSession(&ctx, req, &s).ok());
  }

  std::mutex mu;
  std::vector<v1::Session> seen;  // Guarded by mu until the watcher is joined.
  grpc::Status watch_status;
  auto seen_count = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return seen.size();
  };
  std::thread watcher([&] {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::WatchSessionRequest w;
    w.set_id(s.id());
    auto reader = on_replica->WatchSession(&ctx, w);
    v1::Session update;
    while (reader->Read(&update)) {
      std::lock_guard<std::mutex> lock(mu);
      seen.push_back(update);
    }
    watch_status = reader->Finish();
  });
  // Let the watch deliver the current state before changing anything.
  REQUIRE(WaitFor([&] { return seen_count() >= 1; }, absl::Seconds(10)));
  {
    grpc::ClientContext ctx;
    v1::HibernateSessionRequest h;
    h.set_id(s.id());
    v1::Session out;
    REQUIRE(on_first->HibernateSession(&ctx, h, &out).ok());
  }
  REQUIRE(WaitFor([&] { return seen_count() >= 2; }, absl::Seconds(10)));
  {
    grpc::ClientContext ctx;
    v1::DeleteSessionRequest d;
    d.set_id(s.id());
    v1::Session out;
    REQUIRE(on_first->DeleteSession(&ctx, d, &out).ok());
  }
  watcher.join();
  INFO(watch_status.error_message());
  CHECK(watch_status.ok());  // It ended by itself at the terminal phase.
  REQUIRE(seen.size() >= 3);
  CHECK(seen[0].phase() == v1::SESSION_PHASE_RUNNING);
  CHECK(seen[1].phase() == v1::SESSION_PHASE_HIBERNATED);
  CHECK(seen.back().phase() == v1::SESSION_PHASE_TERMINATED);
  for (size_t i = 1; i < seen.size(); ++i) CHECK(seen[i].version() > seen[i - 1].version());
}

TEST_CASE("a session's id is accepted in upper case everywhere, and a watch by it hears each change at once",
          "[e2e][watch]") {
  LocalFleet fleet;
  fleet.StartSingleNode("1");
  auto sessions = fleet.AdminSessions();
  v1::CreateSessionRequest req;
  req.set_wait_for_running(true);
  *req.mutable_spec() = SleepSpec("3600.3536");
  v1::Session s;
  {
    grpc::ClientContext ctx;
    REQUIRE(sessions->CreateSession(&ctx, req, &s).ok());
  }
  const std::string upper = absl::AsciiStrToUpper(s.id());
  REQUIRE(upper != s.id());
  {
    grpc::ClientContext ctx;
    v1::GetSessionRequest get;
    get.set_id(upper);
    v1::Session out;
    REQUIRE(sessions->GetSession(&ctx, get, &out).ok());
    CHECK(out.id() == s.id());
  }

  std::mutex mu;
  std::vector<std::pair<v1::SessionPhase, absl::Time>> seen;  // guarded by mu until joined
  std::thread watcher([&] {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::WatchSessionRequest w;
    w.set_id(upper);
    auto reader = sessions->WatchSession(&ctx, w);
    v1::Session update;
    while (reader->Read(&update)) {
      std::lock_guard<std::mutex> lock(mu);
      seen.emplace_back(update.phase(), absl::Now());
    }
  });
  auto seen_count = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return seen.size();
  };
  REQUIRE(WaitFor([&] { return seen_count() >= 1; }, absl::Seconds(10)));
  // Each change reaches the watch well inside the 30 s of its fallback re-read.
  const absl::Time hibernated = absl::Now();
  {
    grpc::ClientContext ctx;
    v1::HibernateSessionRequest h;
    h.set_id(upper);
    v1::Session out;
    REQUIRE(sessions->HibernateSession(&ctx, h, &out).ok());
  }
  CHECK(WaitFor([&] { return seen_count() >= 2; }, absl::Seconds(3)));
  const absl::Time deleted = absl::Now();
  {
    grpc::ClientContext ctx;
    v1::DeleteSessionRequest d;
    d.set_id(upper);
    v1::Session out;
    REQUIRE(sessions->DeleteSession(&ctx, d, &out).ok());
  }
  watcher.join();
  REQUIRE(seen.size() >= 3);
  CHECK(seen[1].first == v1::SESSION_PHASE_HIBERNATED);
  CHECK(seen[1].second - hibernated < absl::Seconds(3));
  CHECK(seen.back().first == v1::SESSION_PHASE_TERMINATED);
  CHECK(seen.back().second - deleted < absl::Seconds(5));
}

TEST_CASE("watching someone else's or a missing session is NOT_FOUND", "[e2e][watch]") {
  LocalFleet fleet;
  fleet.StartApi();
  auto stub = v1::SessionService::NewStub(fleet.ChannelWithCert(fleet.pki().Issue("user", "eve")));
  grpc::ClientContext ctx;
  v1::WatchSessionRequest w;
  w.set_id("00000000-0000-0000-0000-000000000000");
  auto reader = stub->WatchSession(&ctx, w);
  v1::Session s;
  CHECK_FALSE(reader->Read(&s));
  CHECK(reader->Finish().error_code() == grpc::StatusCode::NOT_FOUND);
}

TEST_CASE("a thousand open watches park no thread in the API server, and each hears the end",
          "[e2e][watch]") {
  constexpr int kWatches = 1000;
  LocalFleet fleet;
  fleet.api_env["GANTRY_MAX_STREAMS_PER_CLIENT"] = std::to_string(kWatches + 10);
  fleet.StartSingleNode("1");
  auto sessions = fleet.AdminSessions();
  v1::CreateSessionRequest req;
  req.set_wait_for_running(true);
  *req.mutable_spec() = SleepSpec("3600.3537");
  v1::Session s;
  {
    grpc::ClientContext ctx;
    REQUIRE(sessions->CreateSession(&ctx, req, &s).ok());
  }
  struct Watch {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReader<v1::Session>> reader;
  };
  auto open = [&](Watch& w) {
    w.ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    v1::WatchSessionRequest request;
    request.set_id(s.id());
    w.reader = sessions->WatchSession(&w.ctx, request);
    v1::Session first;
    REQUIRE(w.reader->Read(&first));  // The state as it is: the watch is open and admitted.
    CHECK(first.phase() == v1::SESSION_PHASE_RUNNING);
  };
  // Idle: a few watches opened and closed, so whatever the server starts on first use exists.
  for (int i = 0; i < 3; ++i) {
    Watch w;
    open(w);
    w.ctx.TryCancel();
    v1::Session ignored;
    while (w.reader->Read(&ignored)) {
    }
    w.reader->Finish();
  }
  const int idle_threads = ThreadCount(fleet.api().pid());
  const int64_t idle_rss_kib = RssKib(fleet.api().pid());
  REQUIRE(idle_threads > 0);

  std::vector<std::unique_ptr<Watch>> watches;
  for (int i = 0; i < kWatches; ++i) {
    watches.push_back(std::make_unique<Watch>());
    open(*watches.back());
  }
  const int open_threads = ThreadCount(fleet.api().pid());
  const int64_t open_rss_kib = RssKib(fleet.api().pid());
  INFO("gantry-api threads: " << idle_threads << " idle, " << open_threads << " with " << kWatches
                              << " watches open; RSS " << idle_rss_kib << " -> " << open_rss_kib << " KiB");
  CHECK(open_threads - idle_threads <= 8);  // Memory per watch is a figure: gantry-bench footprint.

  // One change, a thousand watchers: each is told, and each watch ends by itself.
  {
    grpc::ClientContext ctx;
    v1::DeleteSessionRequest d;
    d.set_id(s.id());
    v1::Session out;
    REQUIRE(sessions->DeleteSession(&ctx, d, &out).ok());
  }
  int ended_terminated = 0;
  for (auto& w : watches) {
    v1::Session update, last;
    while (w->reader->Read(&update)) last = update;
    grpc::Status status = w->reader->Finish();
    if (status.ok() && last.phase() == v1::SESSION_PHASE_TERMINATED) ++ended_terminated;
  }
  CHECK(ended_terminated == kWatches);
}


// Sessions that fail at once change phase in quick succession while their watches read: a
// change that lands between a watch's last read and the end of its read job must start another
// read. With the periodic re-read pushed out of reach, a change lost there leaves its watch
// open on RUNNING until the deadline.
TEST_CASE("watches of sessions that fail at once each hear the FAILED, with no periodic re-read to fall back on",
          "[e2e][watch]") {
  constexpr int kClients = 16;
  constexpr int kRounds = 8;
  LocalFleet fleet;
  fleet.api_env["GANTRY_WATCH_RECHECK_INTERVAL"] = "1h";
  fleet.StartSingleNode("1");
  auto sessions = fleet.AdminSessions();
  std::mutex mu;
  std::vector<std::string> unheard;  // Guarded by mu: each watch that ended without the FAILED.
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      for (int round = 0; round < kRounds; ++round) {
        v1::CreateSessionRequest req;
        *req.mutable_spec() = ShellSpec("exit 1");
        v1::Session s;
        grpc::ClientContext create;
        grpc::Status created = sessions->CreateSession(&create, req, &s);
        if (!created.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          unheard.push_back("create: " + created.error_message());
          continue;
        }
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
        v1::WatchSessionRequest w;
        w.set_id(s.id());
        auto reader = sessions->WatchSession(&ctx, w);
        v1::Session update, last;
        while (reader->Read(&update)) last = update;
        grpc::Status status = reader->Finish();
        if (!status.ok() || last.phase() != v1::SESSION_PHASE_FAILED) {
          std::lock_guard<std::mutex> lock(mu);
          unheard.push_back(absl::StrCat(s.id(), ": last ", v1::SessionPhase_Name(last.phase()), ", ",
                                         status.error_message()));
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  INFO(absl::StrJoin(unheard, "\n"));
  CHECK(unheard.empty());
}

}  // namespace gantry::testing
