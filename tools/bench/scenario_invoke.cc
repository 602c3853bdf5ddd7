// invoke-latency, stream and footprint-invoke: a persistent echo capability (gantry-bench echo-handler) invoked
// through gantry-api -> controller -> worker -> handler, against the bare relay (client -> relay
// -> relay -> echo) built from the same libraries, both over mTLS on loopback, same payloads.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <atomic>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/tls.h"
#include "gantry/v1/invoke_service.grpc.pb.h"
#include "tests/support/local_fleet.h"
#include "tools/bench/bench_options.h"
#include "tools/bench/bench_report.h"
#include "tools/bench/echo_relay.h"
#include "tools/bench/footprint_sample.h"
#include "tools/bench/load.h"

namespace gantry::bench {
namespace {

using testing::LocalFleet;

std::string SelfPath() {
  char path[4096];
  ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  return std::string(path, n > 0 ? static_cast<size_t>(n) : 0);
}

// A fleet whose one worker serves bench/echo with gantry-bench's echo handler.
struct EchoFleet {
  LocalFleet fleet;
  std::vector<std::shared_ptr<grpc::Channel>> gantry_channels, relay_channels;
  std::unique_ptr<EchoRelay> relay;

  EchoFleet() {
    std::string capabilities = fleet.dir().Sub("capabilities.txt");
    // The handler runs as the handlers' uid when the bench runs as root: a copy it can reach.
    std::ofstream(capabilities) << "bench/echo 1.0.0 persistent " << fleet.ReadableCopy(SelfPath(), 0755)
                                << " echo-handler\n";
    fleet.api_env["GANTRY_MAX_INVOKES_PER_CLIENT"] = "2000";  // footprint-invoke holds 1,000.
    fleet.StartApi();
    fleet.StartController("node1");
    fleet.StartWorker("w1", "0", 0, {"--capabilities", capabilities, "--invoke-concurrency", "1100"});
    fleet.WaitUntilWorkersOnline(1);
    std::string admin = fleet.pki().dir() + "/admin-ops";
    std::string relay_cert = fleet.pki().Issue("api-server", "", fleet.dir().Sub("relay"));
    relay = std::make_unique<EchoRelay>(TlsFiles{fleet.pki().ca(), relay_cert + ".crt", relay_cert + ".key"}, 2);
    auto creds = MakeChannelCredentials({fleet.pki().ca(), admin + ".crt", admin + ".key"});
    for (int c = 0; c < 8; ++c) {
      gantry_channels.push_back(fleet.ChannelWithCert(admin));
      relay_channels.push_back(CreateInternalChannel(relay->address(), *creds, true));
    }
    // The capability is routable once the controller has reported it.
    REQUIRE(testing::WaitFor([&] { return Invoke(gantry_channels[0], "ready") > 0; }, absl::Seconds(20)));
  }

  // One request to the end of its stream; the number of chunks, or -1 on failure.
  static int Invoke(const std::shared_ptr<grpc::Channel>& channel, const std::string& payload) {
    v1::InvokeRequest request;
    request.set_capability("bench/echo");
    request.set_payload(payload);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    auto reader = v1::InvokeService::NewStub(channel)->Invoke(&ctx, request);
    v1::InvokeChunk chunk;
    int chunks = 0;
    while (reader->Read(&chunk)) ++chunks;
    grpc::Status status = reader->Finish();
    if (!status.ok()) {
      static std::atomic<int> shown{0};
      if (shown++ < 3) UNSCOPED_INFO("invoke failed: " << status.error_code() << " " << status.error_message());
      return -1;
    }
    return chunks;
  }
};

LoadResult Run(const std::vector<std::shared_ptr<grpc::Channel>>& channels, int n, int concurrency,
               const std::string& payload) {
  return ClosedLoop(n, concurrency, [&](int i) { return EchoFleet::Invoke(channels[i % channels.size()], payload) > 0; });
}

}  // namespace

TEST_CASE("invoke-latency", "[bench]") {
  EchoFleet echo;
  const std::string payload(16, 'p');
  for (int concurrency : {1, 64}) {
    const int n = concurrency == 1 ? Size(2000, 100) : Size(8000, 400);
    Run(echo.gantry_channels, n / 10, concurrency, payload);  // warm-up
    Run(echo.relay_channels, n / 10, concurrency, payload);
    std::string at = absl::StrCat(" at concurrency ", concurrency);
    Figure p50{"invoke-latency", "p50" + at, "ms"}, p99{"invoke-latency", "p99" + at, "ms"};
    Figure rate{"invoke-latency", "requests per second" + at, "1/s"};
    for (int round = 0; round < Options().rounds; ++round) {
      LoadResult gantry = Run(echo.gantry_channels, n, concurrency, payload);
      LoadResult bare = Run(echo.relay_channels, n, concurrency, payload);
      CHECK(gantry.failures == 0);
      CHECK(bare.failures == 0);
      rate.rounds.push_back(gantry.latency_ms.size() / gantry.seconds);
      rate.baseline_rounds.push_back(bare.latency_ms.size() / bare.seconds);
      Latencies g = Summarise(&gantry.latency_ms), b = Summarise(&bare.latency_ms);
      p50.rounds.push_back(g.p50);
      p50.baseline_rounds.push_back(b.p50);
      p99.rounds.push_back(g.p99);
      p99.baseline_rounds.push_back(b.p99);
    }
    p50.target = Target::AtMost(1.3, true);
    p99.target = Target::AtMost(2, true);
    Report::Global().Add(p50);
    Report::Global().Add(p99);
    Report::Global().Add(rate);
  }
}

TEST_CASE("stream", "[bench]") {
  EchoFleet echo;
  struct Shape {
    std::string what;
    int streams, chunks;
  };
  // A persistent handler's output waits in the worker up to 16,384 chunks per request (then the
  // request is cut off: the framed protocol has no flow control back to the handler), and this
  // handler writes as fast as it can: streams stay under that.
  for (const Shape& shape : {Shape{"one stream", 1, Size(12000, 3000)}, Shape{"64 streams", 64, Size(500, 100)}}) {
    const std::string payload = absl::StrCat("STREAM ", shape.chunks, " 64");
    Figure rate{"stream", "64-byte chunks per second, " + shape.what, "1/s"};
    Run(echo.gantry_channels, shape.streams, shape.streams, absl::StrCat("STREAM ", shape.chunks / 10, " 64"));
    for (int round = 0; round < Options().rounds; ++round) {
      LoadResult gantry = Run(echo.gantry_channels, shape.streams, shape.streams, payload);
      LoadResult bare = Run(echo.relay_channels, shape.streams, shape.streams, payload);
      CHECK(gantry.failures == 0);
      CHECK(bare.failures == 0);
      // Only streams that completed count.
      rate.rounds.push_back(static_cast<double>(gantry.latency_ms.size()) * shape.chunks / gantry.seconds);
      rate.baseline_rounds.push_back(static_cast<double>(bare.latency_ms.size()) * shape.chunks / bare.seconds);
    }
    rate.target = Target::AtLeast(0.7, true);
    Report::Global().Add(rate);
  }
}

// footprint-invoke: the footprint scenario's figures for invokes held in flight at once (the
// echo handler never answers "HOLD"), in the same fleet the invoke figures come from.
TEST_CASE("footprint-invoke", "[bench]") {
  EchoFleet echo;
  // Under the worker's 1,100 requests at once and the API server's 2,000 invokes per client.
  const int k = Size(1000, 16);
  FootprintSample before = TakeFootprint(echo.fleet);
  const testing::LocalFleet::Threads idle_threads = echo.fleet.ThreadCounts();
  v1::InvokeRequest request;
  request.set_capability("bench/echo");
  request.set_payload("HOLD");
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::InvokeChunk>>> readers;
  for (int i = 0; i < k; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    auto stub = v1::InvokeService::NewStub(echo.gantry_channels[i % echo.gantry_channels.size()]);
    readers.push_back(stub->Invoke(contexts.back().get(), request));
  }
  // Held at every hop once the worker has them all: its active invokes, as the controller reports.
  REQUIRE(testing::WaitFor([&] {
    return echo.fleet.db().Scalar("SELECT COALESCE(sum((load->>'active_invokes')::int), 0) FROM controllers") ==
           std::to_string(k);
  }, absl::Seconds(20)));
  FootprintSample held = TakeFootprint(echo.fleet);
  AddFootprintPerItem("per in-flight invoke", before, held, k);
  // Streams on reactors park no thread: each process's threads over idle, with k in flight.
  const testing::LocalFleet::Threads held_threads = echo.fleet.ThreadCounts();
  AddThreadsOverIdle("footprint-invoke", absl::StrCat(k, " invokes in flight"), idle_threads, held_threads);
  for (auto& c : contexts) c->TryCancel();
  for (auto& r : readers) CHECK(r->Finish().error_code() == grpc::StatusCode::CANCELLED);
}

}  // namespace gantry::bench
