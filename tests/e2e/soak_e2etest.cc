// A soak: mixed create / log-follow / hibernate / wake / invoke / delete churn from several
// clients for GANTRY_SOAK_SECONDS (120 in the suite; `GANTRY_SOAK_SECONDS=600 tools/test.sh
// -R soak --timeout 900` for the 10-minute run). The API server's, controller's and worker's
// resident memory, threads and file descriptors are sampled after a warm-up and again once the
// churn has stopped: they must come back flat. The figures are printed for the record.
#include <grpcpp/client_context.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <unistd.h>
#include <fstream>
#include <map>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gantry/v1/invoke_service.grpc.pb.h"
#include "tests/support/invariants.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

struct Usage {
  int64_t rss_kib = 0, threads = 0, fds = 0;
};

// The process's open descriptors, as paths under /proc/<pid>/fd.
std::vector<std::string> FdPaths(pid_t pid) {
  std::vector<std::string> paths;
  const std::string dir = absl::StrCat("/proc/", pid, "/fd");
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') paths.push_back(absl::StrCat(dir, "/", e->d_name));
    }
    closedir(d);
  }
  return paths;
}

Usage UsageOf(pid_t pid) {
  Usage u;
  u.rss_kib = RssKib(pid);
  u.threads = ThreadCount(pid);
  u.fds = static_cast<int64_t>(FdPaths(pid).size());
  return u;
}

// What the process's descriptors point at, counted by kind ("pipe", "socket", or the path):
// printed when descriptors are left behind, to say which.
std::string FdTargets(pid_t pid) {
  std::map<std::string, int> by_target;
  for (const std::string& path : FdPaths(pid)) {
    char target[512];
    ssize_t n = readlink(path.c_str(), target, sizeof(target) - 1);
    if (n <= 0) continue;
    std::string t(target, n);
    ++by_target[t.substr(0, t.find(":["))];
  }
  std::string out;
  for (const auto& [target, n] : by_target) absl::StrAppend(&out, n, " ", target, "\n");
  return out;
}

// One client's churn: each round a session that writes a line every 100 ms is created, its
// log followed for a few lines, hibernated, woken, asked for an invoke, and deleted.
void Churn(LocalFleet& fleet, std::atomic<bool>& stop, std::atomic<int64_t>& rounds, std::atomic<int64_t>& errors,
           std::string* first_error) {
  auto sessions = fleet.AdminSessions();
  auto invoker = v1::InvokeService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops"));
  auto fail = [&](const std::string& what, const grpc::Status& st) {
    if (errors++ == 0) *first_error = absl::StrCat(what, ": ", st.error_message());
  };
  auto deadline = [](grpc::ClientContext& ctx) {
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  };
  while (!stop) {
    v1::CreateSessionRequest create;
    create.set_wait_for_running(true);
    *create.mutable_spec() = ShellSpec("while :; do echo tick; sleep 0.1; done", 1);
    v1::Session s;
    {
      grpc::ClientContext ctx;
      deadline(ctx);
      grpc::Status st = sessions->CreateSession(&ctx, create, &s);
      if (!st.ok()) {
        fail("create", st);
        absl::SleepFor(absl::Milliseconds(200));
        continue;
      }
    }
    {
      grpc::ClientContext ctx;
      deadline(ctx);
      v1::StreamLogsRequest req;
      req.set_id(s.id());
      req.set_follow(true);
      auto reader = sessions->StreamLogs(&ctx, req);
      v1::LogEntry e;
      for (int lines = 0; lines < 3 && reader->Read(&e); ++lines) {
      }
      ctx.TryCancel();
      while (reader->Read(&e)) {
      }
      (void)reader->Finish();
    }
    v1::Session out;
    for (bool hibernate : {true, false}) {
      grpc::ClientContext ctx;
      deadline(ctx);
      grpc::Status st;
      if (hibernate) {
        v1::HibernateSessionRequest req;
        req.set_id(s.id());
        st = sessions->HibernateSession(&ctx, req, &out);
      } else {
        v1::WakeSessionRequest req;
        req.set_id(s.id());
        st = sessions->WakeSession(&ctx, req, &out);
      }
      if (!st.ok()) fail(hibernate ? "hibernate" : "wake", st);
    }
    {
      grpc::ClientContext ctx;
      deadline(ctx);
      v1::InvokeRequest req;
      req.set_capability("demo/echo");
      req.set_payload("soak");
      auto reader = invoker->Invoke(&ctx, req);
      v1::InvokeChunk chunk;
      std::string got;
      while (reader->Read(&chunk)) got += chunk.data();
      grpc::Status st = reader->Finish();
      if (!st.ok() || got != "soak") fail("invoke", st);
    }
    {
      grpc::ClientContext ctx;
      deadline(ctx);
      v1::DeleteSessionRequest req;
      req.set_id(s.id());
      grpc::Status st = sessions->DeleteSession(&ctx, req, &out);
      if (!st.ok()) fail("delete", st);
    }
    ++rounds;
  }
}

}  // namespace

TEST_CASE("soak: churn leaves memory, threads and file descriptors flat in every process", "[e2e][soak]") {
  int seconds = 120;
  if (const char* env = std::getenv("GANTRY_SOAK_SECONDS")) REQUIRE(absl::SimpleAtoi(env, &seconds));
  LocalFleet fleet;
  // Under ASan on 2 cores a worker's heartbeat has been seen to come over 3 s late (8 invokes
  // in 500 rounds failed with "worker disconnected"): give it 10 beats there.
  if (kSanitizedBuild) fleet.controller_env["GANTRY_WORKER_MISSED_HEARTBEATS"] = "10";
  fleet.StartApi();
  fleet.StartController();
  const std::string caps = fleet.dir().Sub("soak.capabilities");
  std::ofstream(caps) << "demo/echo 1.0.0 exec /bin/cat\n";
  fleet.StartWorker("w1", "8", 0, {"--capabilities", caps});
  fleet.WaitUntilSchedulable(1);
  REQUIRE(WaitFor([&] {
    return fleet.db().Scalar("SELECT count(*) FROM controllers WHERE capabilities @> '[{\"name\": \"demo/echo\"}]'") != "0";
  }, absl::Seconds(20)));

  std::atomic<bool> stop{false};
  std::atomic<int64_t> rounds{0}, errors{0};
  constexpr int kClients = 4;
  std::vector<std::string> first_errors(kClients);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] { Churn(fleet, stop, rounds, errors, &first_errors[c]); });
  }
  const std::vector<std::pair<std::string, pid_t>> procs = {
      {"api", fleet.api().pid()}, {"controller", fleet.controller().pid()}, {"worker", fleet.worker().pid()}};
  auto sample = [&] {
    std::vector<Usage> out;
    for (const auto& [name, pid] : procs) out.push_back(UsageOf(pid));
    return out;
  };
  // Warm-up: caches, pools and thread pools reach their working size. Among them the worker's
  // logs of its last 64 ended sessions (LogPump's keep_finished), two descriptors each, which
  // a slow build (ThreadSanitizer) had not yet filled after the timed part.
  const int warmup = std::max(10, seconds / 6);
  constexpr int64_t kWorkerKeepsEndedLogs = 64;
  absl::SleepFor(absl::Seconds(warmup));
  (void)WaitFor([&] { return rounds >= kWorkerKeepsEndedLogs + kClients; }, absl::Seconds(seconds));
  const std::vector<Usage> warm = sample();
  const int64_t warm_rounds = rounds;
  std::vector<Usage> peak = warm;
  for (absl::Time end = absl::Now() + absl::Seconds(seconds - warmup); absl::Now() < end;) {
    absl::SleepFor(absl::Seconds(1));
    std::vector<Usage> now = sample();
    for (size_t i = 0; i < now.size(); ++i) {
      peak[i].rss_kib = std::max(peak[i].rss_kib, now[i].rss_kib);
      peak[i].threads = std::max(peak[i].threads, now[i].threads);
      peak[i].fds = std::max(peak[i].fds, now[i].fds);
    }
  }
  stop = true;
  for (auto& t : clients) t.join();
  RequireInvariants(fleet);  // also waits for the fleet to become quiet
  const std::vector<Usage> after = sample();

  std::fprintf(stderr, "soak: %d s, %lld rounds (%lld after warm-up), %lld errors\n", seconds,
               static_cast<long long>(rounds.load()), static_cast<long long>(rounds - warm_rounds),
               static_cast<long long>(errors.load()));
  for (size_t i = 0; i < procs.size(); ++i) {
    std::fprintf(stderr, "soak: %-10s rss %lld -> %lld KiB (peak %lld), threads %lld -> %lld (peak %lld), fds %lld -> %lld (peak %lld)\n",
                 procs[i].first.c_str(), static_cast<long long>(warm[i].rss_kib), static_cast<long long>(after[i].rss_kib),
                 static_cast<long long>(peak[i].rss_kib), static_cast<long long>(warm[i].threads),
                 static_cast<long long>(after[i].threads), static_cast<long long>(peak[i].threads),
                 static_cast<long long>(warm[i].fds), static_cast<long long>(after[i].fds), static_cast<long long>(peak[i].fds));
  }
  INFO("first error of each client: " << absl::StrJoin(first_errors, " | "));
  CHECK(errors == 0);
  CHECK(rounds - warm_rounds >= 10);
  for (size_t i = 0; i < procs.size(); ++i) {
    INFO(procs[i].first << ", descriptors now:\n" << FdTargets(procs[i].second));
    // Flat: no descriptor or thread left behind per round, and memory within allocator noise.
    // The 120-s run does about 1,200 rounds after the warm-up and grows under 600 KiB (the
    // same as a 40-s run: a plateau, not a leak); a leak of 4 KiB per round would fail it.
    CHECK(after[i].fds <= warm[i].fds + 2);
    CHECK(after[i].threads <= warm[i].threads + 2);
    if (!kSanitizedBuild) CHECK(after[i].rss_kib - warm[i].rss_kib < 4 * 1024);
  }
}

}  // namespace gantry::testing
