// InvokeService from the client through the API server, controller and worker to exec and
// persistent handlers and back, chunk by chunk: routing, order, cancellation, deadlines,
// failures before and after the first chunk, load spreading, affinity, and bad input.
#include <grpcpp/client_context.h>
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gantry/v1/invoke_service.grpc.pb.h"
#include "absl/strings/match.h"
#include "tests/support/gantryctl_runner.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

std::string WriteFile(LocalFleet& fleet, const std::string& name, const std::string& text, bool executable = false) {
  std::string path = fleet.dir().Sub(name);
  std::ofstream(path) << text;
  if (executable) chmod(path.c_str(), 0755);
  return path;
}

// The demo tokens handler, copied where the handlers' own uid can read it.
std::string TokensHandler(LocalFleet& fleet, int delay_ms, const std::string& record = "") {
  return absl::StrCat("python3 ", fleet.ReadableCopy(SourcePath("tools/lib/demo_tokens.py")), " --delay-ms ", delay_ms,
                      record.empty() ? "" : " --record " + record);
}

void WaitUntilAdvertised(LocalFleet& fleet, const std::string& capability) {
  bool seen = WaitFor([&] {
    return fleet.db().Scalar("SELECT count(*) FROM controllers WHERE capabilities @> '[{\"name\": \"" +
                             capability + "\"}]'") != "0";
  }, absl::Seconds(20));
  INFO(fleet.controller().Log());
  REQUIRE(seen);
}

// The API server, controller "node1" and worker "w1" serving `lines`, once `capability` is
// advertised to the API server.
void StartSingleCapableNode(LocalFleet& fleet, const std::string& lines, const std::string& capability,
                            const std::vector<std::string>& extra = {}) {
  fleet.StartApi();
  fleet.StartController();
  fleet.StartWorkerServing("w1", "", lines, extra);
  WaitUntilAdvertised(fleet, capability);
}

struct Result {
  grpc::Status status;
  std::vector<v1::InvokeChunk> chunks;
  std::string Data() const {
    std::string out;
    for (const auto& c : chunks) out += c.data();
    return out;
  }
};

// An invoke left open, for the test to read from, cancel or abandon.
struct OpenCall {
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReader<v1::InvokeChunk>> reader;
};
std::unique_ptr<OpenCall> Open(v1::InvokeService::Stub& stub, const std::string& capability,
                               const std::string& payload = "") {
  auto call = std::make_unique<OpenCall>();
  v1::InvokeRequest req;
  req.set_capability(capability);
  req.set_payload(payload);
  call->reader = stub.Invoke(&call->ctx, req);
  return call;
}

std::unique_ptr<v1::InvokeService::Stub> Invoker(LocalFleet& fleet) {
  return v1::InvokeService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops"));
}

Result Call(LocalFleet& fleet, const std::string& capability, const std::string& payload,
            const std::string& version = "", const std::map<std::string, std::string>& metadata = {},
            absl::Duration deadline = absl::Seconds(30)) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  v1::InvokeRequest req;
  req.set_capability(capability);
  req.set_version(version);
  req.set_payload(payload);
  for (const auto& [k, v] : metadata) (*req.mutable_metadata())[k] = v;
  auto stub = Invoker(fleet);
  auto reader = stub->Invoke(&ctx, req);
  Result r;
  v1::InvokeChunk chunk;
  while (reader->Read(&chunk)) r.chunks.push_back(chunk);
  r.status = reader->Finish();
  return r;
}

// The call failed with `code`, and its message says `says` (at its start when `at_start`).
void CheckFailed(const Result& r, grpc::StatusCode code, const std::string& says, bool at_start = false) {
  INFO(r.status.error_message());
  CHECK(r.status.error_code() == code);
  if (at_start) {
    CHECK(r.status.error_message().rfind(says, 0) == 0);
  } else {
    CHECK(r.status.error_message().find(says) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("invoke: exec and persistent handlers stream through API, controller and worker", "[e2e][invoke]") {
  LocalFleet fleet;
  // A models directory whose models are served by one handler, as model/<name>.
  std::string models = fleet.dir().Sub("models");
  REQUIRE(mkdir(models.c_str(), 0755) == 0);
  REQUIRE(mkdir((models + "/llama-mini").c_str(), 0755) == 0);
  WriteFile(fleet, "models/llama-mini/VERSION", "0.3.1\n");
  StartSingleCapableNode(fleet,
                         "demo/echo 1.4.0 exec cat\ndemo/tokens 1.0.0 persistent " + TokensHandler(fleet, 5) +
                             "\ndemo/fast 1.0.0 persistent " + TokensHandler(fleet, 0) + "\n",
                         "demo/tokens", {"--models-dir", models, "--model-handler", "exec printenv GANTRY_MODEL"});

  Result echo = Call(fleet, "demo/echo", "hello gantry");
  INFO(echo.status.error_message() << "\n" << fleet.worker().Log() << fleet.api().Log());
  REQUIRE(echo.status.ok());
  CHECK(echo.Data() == "hello gantry");
  REQUIRE_FALSE(echo.chunks.empty());
  CHECK(echo.chunks.back().last());
  CHECK(echo.chunks.front().worker_id() == "node1/w1");
  CHECK(echo.chunks.front().controller_id() == fleet.db().Scalar("SELECT id FROM controllers"));
  for (size_t i = 0; i < echo.chunks.size(); ++i) CHECK(echo.chunks[i].sequence() == static_cast<int64_t>(i));

  Result tokens = Call(fleet, "demo/tokens", "the quick brown fox");
  REQUIRE(tokens.status.ok());
  REQUIRE(tokens.chunks.size() == 5);  // One per word, then the last.
  CHECK(tokens.chunks[0].data() == "the ");
  CHECK(tokens.chunks[3].data() == "fox ");
  CHECK(tokens.chunks[4].last());

  SECTION("models in the models directory are capabilities") {
    Result model = Call(fleet, "model/llama-mini", "", "^0.3");
    INFO(model.status.error_message());
    REQUIRE(model.status.ok());
    CHECK(model.Data() == "llama-mini\n");
  }
  SECTION("semantic version ranges") {
    CHECK(Call(fleet, "demo/echo", "x", "^1.2").status.ok());
    CHECK(Call(fleet, "demo/echo", "x", "~1.4").status.ok());
    CheckFailed(Call(fleet, "demo/echo", "x", "^2"), grpc::StatusCode::NOT_FOUND,
                "demo/echo at a version matching \"^2\"");
  }
  SECTION("a 10,000-chunk stream arrives whole and in order") {
    std::vector<std::string> words;
    for (int i = 0; i < 10000; ++i) words.push_back(absl::StrCat("w", i));
    absl::Time started = absl::Now();
    Result big = Call(fleet, "demo/fast", absl::StrJoin(words, " "));
    INFO("10,000 chunks in " << absl::FormatDuration(absl::Now() - started) << ": " << big.status.error_message());
    REQUIRE(big.status.ok());
    REQUIRE(big.chunks.size() == 10001);
    for (int i = 0; i < 10000; ++i) {
      if (big.chunks[static_cast<size_t>(i)].data() != absl::StrCat("w", i, " ") ||
          big.chunks[static_cast<size_t>(i)].sequence() != i) {
        FAIL("chunk " << i << " is \"" << big.chunks[static_cast<size_t>(i)].data() << "\"");
      }
    }
  }
}

TEST_CASE("invoke: cancel and deadline stop the handler's work at once", "[e2e][invoke]") {
  LocalFleet fleet;
  std::string slow = WriteFile(fleet, "slow.sh", "#!/bin/sh\necho first\nexec sleep 3600.4545\n", true);
  std::string silent = WriteFile(fleet, "silent.sh", "#!/bin/sh\nexec sleep 3600.4646\n", true);
  std::string record = fleet.WritableFile("frames.log");  // The handler appends to it.
  StartSingleCapableNode(fleet,
                         absl::StrCat("demo/slow 1.0.0 exec ", slow, "\ndemo/silent 1.0.0 exec ", silent,
                                      "\ndemo/tokens 1.0.0 persistent ", TokensHandler(fleet, 200, record), "\n"),
                         "demo/slow");
  auto stub = Invoker(fleet);

  SECTION("cancelling kills the exec handler") {
    auto call = Open(*stub, "demo/slow");
    v1::InvokeChunk first;
    REQUIRE(call->reader->Read(&first));
    CHECK(first.data() == "first\n");
    REQUIRE(WaitFor([] { return PidsWithCmdline("sleep 3600.4545").size() == 1; }, absl::Seconds(5)));
    absl::Time cancelled = absl::Now();
    call->ctx.TryCancel();
    bool gone = WaitFor([] { return PidsWithCmdline("sleep 3600.4545").empty(); }, absl::Seconds(2));
    absl::Duration took = absl::Now() - cancelled;
    INFO("handler gone " << absl::FormatDuration(took) << " after the cancel");
    CHECK(gone);
    CHECK(call->reader->Finish().error_code() == grpc::StatusCode::CANCELLED);
  }
  SECTION("cancelling sends the persistent handler a cancel frame") {
    auto call = Open(*stub, "demo/tokens", "one two three four five six seven eight nine ten");
    v1::InvokeChunk first;
    REQUIRE(call->reader->Read(&first));
    call->ctx.TryCancel();
    auto frames = [&] {
      std::ifstream in(record);
      std::stringstream ss;
      ss << in.rdbuf();
      return ss.str();
    };
    CHECK(WaitFor([&] { return frames().find("CANCEL ") != std::string::npos; }, absl::Seconds(3)));
    (void)call->reader->Finish();
  }
  SECTION("past the deadline: DEADLINE_EXCEEDED and the handler stopped") {
    Result late = Call(fleet, "demo/silent", "", "", {}, absl::Milliseconds(500));
    CHECK(late.status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
    CHECK(WaitFor([] { return PidsWithCmdline("sleep 3600.4646").empty(); }, absl::Seconds(3)));
  }
}

TEST_CASE("invoke: bad input and broken handlers get clear statuses, and the next request is served",
          "[e2e][invoke]") {
  LocalFleet fleet;
  fleet.api_env["GANTRY_MAX_INVOKE_PAYLOAD_BYTES"] = "1024";
  StartSingleCapableNode(fleet,
                         "demo/echo 1.0.0 exec cat\ndemo/fails 1.0.0 exec false\n"
                         "demo/garbage 1.0.0 persistent /bin/echo garbage\ndemo/quits 1.0.0 persistent false\n",
                         "demo/echo");

  CheckFailed(Call(fleet, "demo/nothing", "x"), grpc::StatusCode::NOT_FOUND, "demo/nothing");
  CheckFailed(Call(fleet, "demo/echo", "x", "^x.1"), grpc::StatusCode::INVALID_ARGUMENT, "version:", true);
  CheckFailed(Call(fleet, "/etc/passwd", "x"), grpc::StatusCode::INVALID_ARGUMENT, "capability:", true);
  CheckFailed(Call(fleet, "demo/echo", std::string(2000, 'x')), grpc::StatusCode::INVALID_ARGUMENT,
              "payload: is 2000 bytes; at most 1024");

  CheckFailed(Call(fleet, "demo/fails", "x"), grpc::StatusCode::UNKNOWN, "exited with code 1");
  CheckFailed(Call(fleet, "demo/garbage", "x"), grpc::StatusCode::UNAVAILABLE, "not a frame");
  CheckFailed(Call(fleet, "demo/quits", "x"), grpc::StatusCode::UNAVAILABLE,
              "demo/quits handler exited with code 1");
  // The worker is unharmed.
  Result echo = Call(fleet, "demo/echo", "still here");
  CHECK(echo.status.ok());
  CHECK(echo.Data() == "still here");
  CHECK(fleet.worker().Alive());
}

TEST_CASE("invoke: every worker at its concurrency limit -> RESOURCE_EXHAUSTED", "[e2e][invoke]") {
  LocalFleet fleet;
  std::string slow = WriteFile(fleet, "slow.sh", "#!/bin/sh\necho first\nexec sleep 3600.5353\n", true);
  StartSingleCapableNode(fleet, "demo/slow 1.0.0 exec " + slow + "\n", "demo/slow", {"--invoke-concurrency", "1"});
  auto stub = Invoker(fleet);
  auto call = Open(*stub, "demo/slow");
  v1::InvokeChunk first;
  REQUIRE(call->reader->Read(&first));  // The one slot is taken.
  CheckFailed(Call(fleet, "demo/slow", ""), grpc::StatusCode::RESOURCE_EXHAUSTED, "demo/slow is busy");
  // The worker's own count of what it runs, as its heartbeats carry it: the slot is its to free.
  auto in_flight = [&] {
    return fleet.db().Scalar("SELECT COALESCE(sum((load->>'active_invokes')::int), 0) FROM controllers");
  };
  REQUIRE(WaitFor([&] { return in_flight() == "1"; }, absl::Seconds(10)));
  call->ctx.TryCancel();
  (void)call->reader->Finish();
  // Freed once the first request is gone: its process, then its slot (the process is reaped
  // before the worker counts the invoke done).
  CHECK(WaitFor([] { return PidsWithCmdline("sleep 3600.5353").empty(); }, absl::Seconds(3)));
  REQUIRE(WaitFor([&] { return in_flight() == "0"; }, absl::Seconds(10)));
  auto again = Open(*stub, "demo/slow");
  const bool answered = again->reader->Read(&first);
  again->ctx.TryCancel();
  const grpc::Status status = again->reader->Finish();
  INFO(status.error_code() << " " << status.error_message());
  CHECK(answered);
}

TEST_CASE("invoke: one client's calls in flight are capped, and other clients are unaffected", "[e2e][invoke][abuse]") {
  LocalFleet fleet;
  fleet.api_env["GANTRY_MAX_INVOKES_PER_CLIENT"] = "2";
  std::string slow = WriteFile(fleet, "slow.sh", "#!/bin/sh\necho first\nexec sleep 3600.5354\n", true);
  StartSingleCapableNode(fleet, "demo/slow 1.0.0 exec " + slow + "\n", "demo/slow", {"--invoke-concurrency", "8"});
  auto admin = Invoker(fleet);
  std::vector<std::unique_ptr<OpenCall>> calls;
  v1::InvokeChunk first;
  for (int i = 0; i < 2; ++i) {
    calls.push_back(Open(*admin, "demo/slow"));
    REQUIRE(calls.back()->reader->Read(&first));
  }
  // Their first chunk is the handler's echo; its shell execs the sleep a moment later.
  REQUIRE(WaitFor([] { return PidsWithCmdline("sleep 3600.5354").size() == 2; }, absl::Seconds(5)));
  CheckFailed(Call(fleet, "demo/slow", ""), grpc::StatusCode::RESOURCE_EXHAUSTED,
              "admin/ops already has 2 Invoke calls open; the limit per client is 2 (--max-invokes-per-client)");
  auto alice = v1::InvokeService::NewStub(fleet.ChannelWithCert(fleet.pki().Issue("user", "alice")));
  auto hers = Open(*alice, "demo/slow");
  CHECK(hers->reader->Read(&first));
  // Nothing of the refused call reached a worker: once hers has its handler, there are three
  // (the refused call came first; a handler of its would have started before hers).
  CHECK(WaitFor([] { return PidsWithCmdline("sleep 3600.5354").size() == 3; }, absl::Seconds(5)));
  CHECK(PidsWithCmdline("sleep 3600.5354").size() == 3);
  for (auto* call : {calls[0].get(), calls[1].get(), hers.get()}) {
    call->ctx.TryCancel();
    (void)call->reader->Finish();
  }
}

TEST_CASE("invoke: a worker lost before the first chunk is replaced, after it the stream fails",
          "[e2e][invoke]") {
  LocalFleet fleet;
  // w1 (chosen first on a tie) never answers; w2 echoes.
  std::string hang = WriteFile(fleet, "hang.sh", "#!/bin/sh\nexec sleep 3600.4848\n", true);
  fleet.StartApi();
  fleet.StartController();
  fleet.StartWorkerServing("w1", "", "demo/flaky 1.0.0 exec " + hang + "\n");
  fleet.StartWorkerServing("w2", "", "demo/flaky 1.0.0 exec cat\n");
  fleet.WaitUntilWorkersOnline(2);
  WaitUntilAdvertised(fleet, "demo/flaky");
  std::thread killer([&] {
    WaitFor([] { return !PidsWithCmdline("sleep 3600.4848").empty(); }, absl::Seconds(10));
    fleet.worker(0).Signal(SIGKILL);
  });
  Result r = Call(fleet, "demo/flaky", "served by w2");
  killer.join();
  INFO(r.status.error_message() << "\n" << fleet.controller().Log());
  REQUIRE(r.status.ok());
  CHECK(r.Data() == "served by w2");
  CHECK(r.chunks.front().worker_id() == "node1/w2");
}

TEST_CASE("invoke: a slow client reading 100 MB slows the handler, and no hop buffers it", "[e2e][invoke]") {
  LocalFleet fleet;
  std::string big = WriteFile(fleet, "big.sh", "#!/bin/sh\nexec head -c 104857600 /dev/zero\n", true);
  fleet.MeasureMemory();
  StartSingleCapableNode(fleet, "demo/big 1.0.0 exec " + big + "\n", "demo/big");
  const LocalFleet::Rss before = fleet.ResidentKib();

  auto stub = Invoker(fleet);
  auto call = Open(*stub, "demo/big");
  v1::InvokeChunk chunk;
  REQUIRE(call->reader->Read(&chunk));
  size_t bytes = chunk.data().size();
  // The client stops reading: the handler must stall (still running), not run to the end into
  // some buffer.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  CHECK(PidsWithCmdline("head -c 104857600").size() == 1);
  fleet.CheckGrowthBelow(before, 32 * 1024);  // while stalled
  // Then it reads everything.
  while (call->reader->Read(&chunk)) bytes += chunk.data().size();
  const grpc::Status status = call->reader->Finish();
  INFO(status.error_code() << " " << status.error_message());
  CHECK(status.ok());
  CHECK(bytes == 104857600u);
}

TEST_CASE("invoke: a persistent handler that pauses is paused for a stalled client, which then gets a long answer whole",
          "[e2e][invoke]") {
  constexpr int kWords = 40000;  // More chunks than a request may hold waiting (16,384).
  LocalFleet fleet;
  const std::string record = fleet.WritableFile("frames.log");  // The handler appends what it is sent.
  StartSingleCapableNode(fleet, "demo/tokens 1.0.0 persistent " + TokensHandler(fleet, 0, record) + "\n",
                         "demo/tokens");
  std::string words;
  for (int i = 0; i < kWords; ++i) absl::StrAppend(&words, "w", i, " ");
  auto stub = Invoker(fleet);
  auto call = Open(*stub, "demo/tokens", words);
  v1::InvokeChunk chunk;
  REQUIRE(call->reader->Read(&chunk));
  std::string answer = chunk.data();
  // The client reads no more: the handler is told to pause, instead of the request being cut off.
  CHECK(WaitFor([&] { return absl::StrContains(Slurp(record), "PAUSE "); }, absl::Seconds(30)));
  while (call->reader->Read(&chunk)) answer += chunk.data();
  grpc::Status status = call->reader->Finish();
  INFO(status.error_message());
  CHECK(status.ok());
  CHECK(answer == words);
  CHECK(absl::StrContains(Slurp(record), "RESUME "));
}

TEST_CASE("invoke: a worker lost mid-stream fails the stream with UNAVAILABLE", "[e2e][invoke]") {
  LocalFleet fleet;
  std::string slow = WriteFile(fleet, "slow.sh", "#!/bin/sh\necho first\nexec sleep 3600.4949\n", true);
  StartSingleCapableNode(fleet, "demo/slow 1.0.0 exec " + slow + "\n", "demo/slow");
  auto stub = Invoker(fleet);
  auto call = Open(*stub, "demo/slow");
  v1::InvokeChunk first;
  REQUIRE(call->reader->Read(&first));
  fleet.worker().Signal(SIGKILL);
  v1::InvokeChunk more;
  while (call->reader->Read(&more)) {
  }
  grpc::Status st = call->reader->Finish();
  CHECK(st.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(st.error_message().find("failed after 1 chunk(s)") != std::string::npos);
  CHECK(WaitFor([] { return PidsWithCmdline("sleep 3600.4949").empty(); }, absl::Seconds(3)));
}

// GET /metrics from the controller, over TLS verified against the cluster CA (as Prometheus
// would scrape it), with Python's standard library.
TEST_CASE("invoke: 200 invokes in flight park no thread in the API server, the controller or the worker, and each "
          "ends when cancelled",
          "[e2e][invoke]") {
  constexpr int kInFlight = 200;
  LocalFleet fleet;
  fleet.api_env["GANTRY_MAX_INVOKES_PER_CLIENT"] = std::to_string(kInFlight + 10);
  // Half to a persistent handler that never answers (its requests wait in its stdin's pipe, 40
  // bytes each), half to an exec handler that never ends (a process each): each invoke stays open.
  StartSingleCapableNode(fleet, "demo/hold 1.0.0 persistent sleep 3600.4343\ndemo/hold-exec 1.0.0 exec sleep 3600.4344\n",
                         "demo/hold-exec", {"--invoke-concurrency", std::to_string(kInFlight + 10)});
  auto stub = Invoker(fleet);
  auto active_invokes = [&] {
    return fleet.db().Scalar("SELECT COALESCE(sum((load->>'active_invokes')::int), 0) FROM controllers");
  };
  // Idle: one invoke of each kind through and done, so whatever the servers start on first use exists.
  for (const char* capability : {"demo/hold", "demo/hold-exec"}) {
    auto warm = Open(*stub, capability);
    REQUIRE(WaitFor([&] { return active_invokes() == "1"; }, absl::Seconds(20)));
    warm->ctx.TryCancel();
    CHECK(warm->reader->Finish().error_code() == grpc::StatusCode::CANCELLED);
    REQUIRE(WaitFor([&] { return active_invokes() == "0"; }, absl::Seconds(20)));
  }
  const int idle_threads = ThreadCount(fleet.api().pid());
  const int idle_controller_threads = ThreadCount(fleet.controller().pid());
  const int idle_worker_threads = ThreadCount(fleet.worker().pid());
  REQUIRE(idle_threads > 0);
  REQUIRE(idle_controller_threads > 0);
  REQUIRE(idle_worker_threads > 0);

  std::vector<std::unique_ptr<OpenCall>> calls;
  for (int i = 0; i < kInFlight; ++i) {
    calls.push_back(Open(*stub, i % 2 == 0 ? "demo/hold" : "demo/hold-exec", "request " + std::to_string(i)));
  }
  // All of them at the handler (the worker's heartbeat counts them, the controller relays it),
  // and every exec handler started (the worker counts a request from its admission).
  REQUIRE(WaitFor([&] { return active_invokes() == std::to_string(kInFlight); }, absl::Seconds(30)));
  REQUIRE(WaitFor([&] { return PidsWithCmdline("sleep 3600.4344").size() == kInFlight / 2; }, absl::Seconds(30)));
  const int open_threads = ThreadCount(fleet.api().pid());
  const int open_controller_threads = ThreadCount(fleet.controller().pid());
  const int open_worker_threads = ThreadCount(fleet.worker().pid());
  INFO("threads with " << kInFlight << " invokes in flight: gantry-api " << idle_threads << " -> " << open_threads
                       << ", gantry-controller " << idle_controller_threads << " -> " << open_controller_threads
                       << ", gantry-worker " << idle_worker_threads << " -> " << open_worker_threads);
  CHECK(open_threads - idle_threads <= 8);
  CHECK(open_controller_threads - idle_controller_threads <= 8);
  CHECK(open_worker_threads - idle_worker_threads <= 8);

  for (auto& call : calls) call->ctx.TryCancel();
  int cancelled = 0;
  for (auto& call : calls) cancelled += call->reader->Finish().error_code() == grpc::StatusCode::CANCELLED;
  CHECK(cancelled == kInFlight);
  // Each cancellation reached the handler's worker: nothing is left in flight, no exec handler runs.
  CHECK(WaitFor([&] { return active_invokes() == "0"; }, absl::Seconds(30)));
  CHECK(WaitFor([&] { return PidsWithCmdline("sleep 3600.4344").empty(); }, absl::Seconds(10)));
}

TEST_CASE("invoke: 200 concurrent requests over three workers all complete, spread by load, with affinity",
          "[e2e][invoke]") {
  LocalFleet fleet;
  fleet.controller_env["GANTRY_METRICS_LISTEN"] = "127.0.0.1:0";
  fleet.controller_env["GANTRY_METRICS_PORT_FILE"] = fleet.dir().Sub("controller-metrics.port");
  fleet.StartApi();
  fleet.StartController();
  for (const char* name : {"w1", "w2", "w3"}) {
    fleet.StartWorkerServing(name, "", "demo/tokens 1.0.0 persistent " + TokensHandler(fleet, 20) + "\n",
                       {"--invoke-concurrency", "100"});
  }
  fleet.WaitUntilWorkersOnline(3);
  WaitUntilAdvertised(fleet, "demo/tokens");

  std::mutex mu;
  std::map<std::string, int> by_worker;
  std::string failures;
  std::vector<std::thread> clients;
  for (int i = 0; i < 200; ++i) {
    clients.emplace_back([&] {
      Result r = Call(fleet, "demo/tokens", "a b c d e");
      std::lock_guard<std::mutex> lock(mu);
      if (!r.status.ok() || r.Data() != "a b c d e ") {
        absl::StrAppend(&failures, r.status.error_code(), " ", r.status.error_message(), "\n");
      } else {
        ++by_worker[r.chunks.front().worker_id()];
      }
    });
  }
  for (auto& t : clients) t.join();
  INFO(failures);
  CHECK(failures.empty());
  REQUIRE(by_worker.size() == 3);
  for (const auto& [worker, n] : by_worker) {
    INFO(worker << " served " << n);
    CHECK(n >= 40);  // Least in flight first: no worker is left idle while another queues.
  }

  // Affinity: the same metadata["session"] keeps to one worker.
  std::set<std::string> pinned;
  for (int i = 0; i < 6; ++i) {
    Result r = Call(fleet, "demo/tokens", "x", "", {{"session", "conversation-1"}});
    REQUIRE(r.status.ok());
    pinned.insert(r.chunks.front().worker_id());
  }
  CHECK(pinned.size() == 1);

  // Per-capability metrics on the controller's /metrics: 206 requests, of 6 chunks (5 words and
  // the last) or 2 ("x" and the last).
  int port = WaitForPortFile(fleet.dir().Sub("controller-metrics.port"), absl::Seconds(5));
  REQUIRE(port > 0);
  std::string metrics = ScrapeMetrics(fleet.pki().ca(), port);
  INFO(metrics);
  CHECK(metrics.find("gantry_invoke_requests_total{capability=\"demo/tokens\",code=\"OK\"} 206\n") != std::string::npos);
  CHECK(metrics.find("gantry_invoke_chunks_total{capability=\"demo/tokens\"} 1212\n") != std::string::npos);
  CHECK(metrics.find("gantry_invoke_in_flight{capability=\"demo/tokens\"} 0\n") != std::string::npos);
  CHECK(metrics.find("gantry_invoke_time_to_first_chunk_seconds_count{capability=\"demo/tokens\"} 206\n") !=
        std::string::npos);
}

}  // namespace gantry::testing
