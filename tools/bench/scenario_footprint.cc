// footprint: what each idle session and each followed log costs each process, as the growth
// of resident memory (VmRSS) and open file descriptors while K of them are held, divided by K.
// (Each in-flight invoke: footprint-invoke, in scenario_invoke.cc with the echo capability.)
// No baseline and no target: figures to watch.
// footprint-watch: 10,000 WatchSession streams held open on one API server (the most it
// serves), with what each costs it in memory and in threads, and all of them told of one change.
#include <catch2/catch.hpp>

#include <algorithm>

#include "absl/time/clock.h"

#include "absl/strings/str_cat.h"
#include "common/session_phase.h"
#include "tests/support/local_fleet.h"
#include "tests/support/test_env.h"
#include "tools/bench/bench_report.h"
#include "tools/bench/bench_options.h"
#include "tools/bench/footprint_sample.h"

namespace gantry::bench {
using testing::LocalFleet;

TEST_CASE("footprint", "[bench]") {
  const int k = Size(200, 20);
  const int streams = Size(1000, 40);  // Followers, spread over the k sessions.
  LocalFleet fleet;
  fleet.api_env["GANTRY_MAX_STREAMS_PER_CLIENT"] = std::to_string(streams + 10);
  fleet.StartSingleNode("0", 0);
  // Warm-up: the first session pays for pools and caches.
  v1::Session first;
  grpc::Status created = fleet.CreateAsAdmin(testing::SleepSpec("70000", 0), &first);
  INFO(created.error_message());
  REQUIRE(created.ok());
  FootprintSample before = TakeFootprint(fleet);
  std::vector<std::string> ids;
  for (int i = 1; i <= k; ++i) {
    v1::Session s;
    REQUIRE(fleet.CreateAsAdmin(testing::ShellSpec(absl::StrCat("echo ready; exec sleep ", 70000 + i)), &s).ok());
    ids.push_back(s.id());
  }
  FootprintSample with_sessions = TakeFootprint(fleet);
  AddFootprintPerItem("per idle session", before, with_sessions, k);
  const testing::LocalFleet::Threads idle_threads = fleet.ThreadCounts();

  // All open at once: each costs the API server, the controller and the worker a stream.
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::LogEntry>>> readers;
  auto stub = fleet.AdminSessions();
  for (int i = 0; i < streams; ++i) {
    const std::string& id = ids[i % k];
    v1::StreamLogsRequest request;
    request.set_id(id);
    request.set_follow(true);
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    readers.push_back(stub->StreamLogs(contexts.back().get(), request));
    v1::LogEntry line;
    if (!readers.back()->Read(&line)) {  // "ready": the stream is open end to end
      grpc::Status status = readers.back()->Finish();
      FAIL("log stream " << readers.size() << " of " << streams << " ended: " << status.error_code() << " "
                         << status.error_message());
    }
  }
  FootprintSample with_streams = TakeFootprint(fleet);
  AddFootprintPerItem("per open log stream", with_sessions, with_streams, streams);
  AddThreadsOverIdle("footprint", absl::StrCat(streams, " logs followed"), idle_threads, fleet.ThreadCounts());
  for (auto& c : contexts) c->TryCancel();
  for (auto& r : readers) (void)r->Finish();
}

TEST_CASE("footprint-watch", "[bench]") {
  const int k = Size(10000, 200);
  LocalFleet fleet;
  fleet.api_env["GANTRY_MAX_STREAMS_PER_CLIENT"] = std::to_string(k + 10);
  fleet.StartSingleNode("0", 0);
  v1::Session session;
  REQUIRE(fleet.CreateAsAdmin(testing::SleepSpec("70001", 0), &session).ok());
  const pid_t api = fleet.api().pid();
  const int idle_threads = testing::ThreadCount(api);
  const int64_t idle_rss = testing::RssKib(api);

  struct Watch {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReader<v1::Session>> reader;
  };
  auto stub = fleet.AdminSessions();
  std::vector<std::unique_ptr<Watch>> watches;
  for (int i = 0; i < k; ++i) {
    auto w = std::make_unique<Watch>();
    v1::WatchSessionRequest request;
    request.set_id(session.id());
    w->reader = stub->WatchSession(&w->ctx, request);
    v1::Session first;
    if (!w->reader->Read(&first)) {
      grpc::Status status = w->reader->Finish();
      FAIL("watch " << i + 1 << " of " << k << " ended: " << status.error_code() << " " << status.error_message());
    }
    watches.push_back(std::move(w));
  }
  // Every watch has its first answer: admitted, subscribed and read, all it holds allocated.
  const int open_threads = testing::ThreadCount(api);
  const int64_t open_rss = testing::RssKib(api);
  Figure memory{"footprint-watch", absl::StrCat("per open watch, ", k, " open: API server RSS"), "KiB",
                {static_cast<double>(open_rss - idle_rss) / k}};
  memory.target = Target::AtMost(20);
  Report::Global().Add(memory);
  Figure threads{"footprint-watch", absl::StrCat("API server threads with ", k, " watches open, over idle"), "threads",
                 {static_cast<double>(open_threads - idle_threads)}};
  threads.target = Target::AtMost(8);
  Report::Global().Add(threads);

  // One change, every watcher told, every watch ended by itself.
  const absl::Time deleted = absl::Now();
  {
    grpc::ClientContext ctx;
    v1::DeleteSessionRequest request;
    request.set_id(session.id());
    v1::Session out;
    REQUIRE(stub->DeleteSession(&ctx, request, &out).ok());
  }
  int ended = 0;
  for (auto& w : watches) {
    v1::Session update, last;
    while (w->reader->Read(&update)) last = update;
    if (w->reader->Finish().ok() && IsTerminal(last.phase())) ++ended;
  }
  CHECK(ended == k);
  Report::Global().Add({"footprint-watch", absl::StrCat("a delete until all ", k, " watchers have the end"), "ms",
                        {absl::ToDoubleMilliseconds(absl::Now() - deleted)}});
}

}  // namespace gantry::bench
