// footprint: what each idle session and each open log stream costs each process, as the growth
// of resident memory (VmRSS) and open file descriptors while K of them are held, divided by K.
// (Each in-flight invoke: footprint-invoke, in scenario_invoke.cc with the echo capability.)
// No baseline and no target: figures to watch.
#include <catch2/catch.hpp>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "tests/support/local_fleet.h"
#include "tools/bench/bench_options.h"
#include "tools/bench/footprint_sample.h"

namespace gantry::bench {
using testing::LocalFleet;

TEST_CASE("footprint", "[bench]") {
  const int k = Size(200, 20);
  LocalFleet fleet;
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

  // One follower per session, all open at once, up to the worker's limit of 64 log streams.
  const int streams = std::min(k, 60);
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::LogEntry>>> readers;
  auto stub = fleet.AdminSessions();
  for (int i = 0; i < streams; ++i) {
    const std::string& id = ids[i];
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
  for (auto& c : contexts) c->TryCancel();
  for (auto& r : readers) (void)r->Finish();
}

}  // namespace gantry::bench
