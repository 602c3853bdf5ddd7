#include "worker/invoke_runner.h"

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <thread>
#include <fstream>
#include <mutex>

#include "tests/support/temp_dir.h"

namespace gantry::worker {
namespace {

struct Outputs {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<v1::WorkerInvokeOutput> seen;
  bool Add(const v1::WorkerInvokeOutput& o) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(o);
    cv.notify_all();
    return true;
  }
  // Waits for the output that ends `id` (last chunk or error); everything for it, in order.
  std::vector<v1::WorkerInvokeOutput> Until(const std::string& id) {
    std::unique_lock<std::mutex> lock(mu);
    std::vector<v1::WorkerInvokeOutput> out;
    cv.wait_for(lock, std::chrono::seconds(10), [&] {
      for (const auto& o : seen) {
        if (o.invoke_id() == id && (o.error_code() != 0 || o.chunk().last())) return true;
      }
      return false;
    });
    for (const auto& o : seen) {
      if (o.invoke_id() == id) out.push_back(o);
    }
    return out;
  }
  // The output that ended `id`.
  v1::WorkerInvokeOutput Last(const std::string& id) {
    auto all = Until(id);
    REQUIRE_FALSE(all.empty());
    return all.back();
  }
};

CapabilityConfig Exec(const std::string& name, std::vector<std::string> command) {
  return {name, "1.0.0", CapabilityConfig::Kind::kExec, std::move(command), {}};
}

v1::InvokeCommand Command(const std::string& id, const std::string& capability, const std::string& payload) {
  v1::InvokeCommand c;
  c.set_invoke_id(id);
  c.mutable_request()->set_capability(capability);
  c.mutable_request()->set_payload(payload);
  c.set_credit(100);
  return c;
}

}  // namespace

TEST_CASE("exec handlers: payload in, output out, the exit code decides", "[worker][invoke]") {
  Outputs outputs;
  InvokeRunner runner({Exec("echo", {"cat"}), Exec("fails", {"sh", "-c", "echo oops >&2; exit 3"}),
                       Exec("missing", {"/nonexistent/handler"})},
                      {}, [&](const v1::WorkerInvokeOutput& o) { return outputs.Add(o); });
  runner.Start(Command("a", "echo", "hello"));
  auto a = outputs.Until("a");
  std::string data;
  for (const auto& o : a) data += o.chunk().data();
  INFO(a.size() << (a.empty() ? "" : a.back().error_message()));
  CHECK(data == "hello");
  REQUIRE_FALSE(a.empty());
  CHECK(a.back().chunk().last());

  runner.Start(Command("b", "fails", ""));
  auto b = outputs.Last("b");
  CHECK(b.error_code() == 2);
  CHECK(b.error_message().find("exited with code 3: oops") != std::string::npos);

  runner.Start(Command("c", "missing", ""));
  auto c = outputs.Last("c");
  CHECK(c.error_message().find("cannot execute handler /nonexistent/handler") != std::string::npos);

  runner.Start(Command("d", "unknown", ""));
  auto d = outputs.Last("d");
  CHECK(d.error_code() == 5);
}

TEST_CASE("exec handlers' exits are found with or without a pidfd, however long they run", "[worker][invoke]") {
  for (const bool use_pidfd : {true, false}) {
    INFO("pidfd: " << use_pidfd);
    Outputs outputs;
    InvokeRunner::Options options;
    options.use_pidfd = use_pidfd;
    // Longer than any bounded wait for an exit; one closes its output and runs on before it fails.
    InvokeRunner runner({Exec("slow", {"sh", "-c", "sleep 1.5; echo done"}),
                         Exec("quiet", {"sh", "-c", "exec >&- 2>&-; sleep 1.5; exit 3"})},
                        options, [&](const v1::WorkerInvokeOutput& o) { return outputs.Add(o); });
    runner.Start(Command("s", "slow", ""));
    runner.Start(Command("q", "quiet", ""));
    auto s = outputs.Until("s");
    REQUIRE(s.size() == 2);
    CHECK(s[0].chunk().data() == "done\n");
    CHECK(s[1].chunk().last());
    auto q = outputs.Last("q");
    CHECK(q.error_code() == 2);
    CHECK(q.error_message().find("exited with code 3") != std::string::npos);
  }
}

TEST_CASE("an exec handler that exits with output still in its pipe sends none of it beyond the credit",
          "[worker][invoke]") {
  char dir[] = "/tmp/gantry-credit-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  const std::string done = std::string(dir) + "/done";
  std::mutex mu;
  std::condition_variable cv;
  int granted = 1;  // Guarded by mu, as are the two below.
  int sent = 0, beyond = 0;
  bool ended = false;
  InvokeRunner runner(
      // One byte, then (its client granting nothing more) 50,000 into the pipe, and it exits.
      {Exec("burst", {"sh", "-c", "printf a; sleep 0.3; head -c 50000 /dev/zero; touch " + done})}, {},
      [&](const v1::WorkerInvokeOutput& o) {
        std::lock_guard<std::mutex> lock(mu);
        // The credit, and one more for the output that ends it.
        if (++sent > granted + 1) ++beyond;
        ended = ended || o.error_code() != 0 || o.chunk().last();
        cv.notify_all();
        return true;
      });
  v1::InvokeCommand command = Command("b", "burst", "");
  command.set_credit(1);
  runner.Start(command);
  {
    std::unique_lock<std::mutex> lock(mu);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return sent >= 1; }));
  }
  // Exited, its pipe holding the rest, the pipe's hang-up reported: a window in which nothing
  // more may be sent.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (access(done.c_str(), F_OK) != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  {
    std::lock_guard<std::mutex> lock(mu);
    CHECK(sent == 1);
  }
  // Then the client reads on: the rest, and the end.
  std::unique_lock<std::mutex> lock(mu);
  while (!ended && std::chrono::steady_clock::now() < deadline) {
    ++granted;
    lock.unlock();
    runner.AddCredit("b", 1);
    lock.lock();
    cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return ended; });
  }
  CHECK(ended);
  CHECK(beyond == 0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a draining worker refuses new invokes, UNAVAILABLE, until the drain is over", "[worker][invoke]") {
  Outputs outputs;
  InvokeRunner runner({Exec("echo", {"cat"})}, {}, [&](const v1::WorkerInvokeOutput& o) { return outputs.Add(o); });
  runner.SetDraining(true);
  runner.Start(Command("a", "echo", "hello"));
  auto a = outputs.Last("a");
  CHECK(a.error_code() == 14);
  CHECK(a.error_message() == "the worker is draining");
  runner.SetDraining(false);
  runner.Start(Command("b", "echo", "hello"));
  auto b = outputs.Last("b");
  CHECK(b.error_code() == 0);
  CHECK(b.chunk().last());
}

TEST_CASE("capabilities files: good lines parse, bad ones are refused naming the line", "[worker][invoke]") {
  auto good = ParseCapabilities("# comment\n\ndemo/echo 1.4 exec cat -u  # trailing\nm/x 0.1.0 persistent python3 s.py\n");
  REQUIRE(good.ok());
  REQUIRE(good->size() == 2);
  CHECK((*good)[0].name == "demo/echo");
  CHECK((*good)[0].version == "1.4");
  CHECK((*good)[0].command == std::vector<std::string>{"cat", "-u"});
  CHECK((*good)[1].kind == CapabilityConfig::Kind::kPersistent);
  for (const char* bad : {"demo/echo 1.0.0 exec", "demo/echo x exec cat", "/abs 1.0.0 exec cat",
                          "demo/echo 1.0.0 forked cat", "a 1.0.0 exec cat\na 1.0.0 exec cat"}) {
    auto r = ParseCapabilities(bad);
    INFO(bad);
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(r.status().message()).rfind("capabilities line ", 0) == 0);
  }
}

TEST_CASE("every model becomes model/<name>, at its VERSION, unless declared", "[worker][invoke]") {
  testing::TempDir scratch;
  const std::string models = scratch.path();
  REQUIRE(mkdir((models + "/llama").c_str(), 0755) == 0);
  REQUIRE(mkdir((models + "/mistral").c_str(), 0755) == 0);
  std::ofstream(models + "/llama/VERSION") << "3.2.1\n";
  std::vector<CapabilityConfig> declared = {Exec("model/mistral", {"true"})};
  auto caps = ModelCapabilities("persistent python3 serve.py", models, {"llama", "mistral"}, declared);
  REQUIRE(caps.ok());
  REQUIRE(caps->size() == 1);
  CHECK((*caps)[0].name == "model/llama");
  CHECK((*caps)[0].version == "3.2.1");
  CHECK((*caps)[0].kind == CapabilityConfig::Kind::kPersistent);
  CHECK((*caps)[0].env == std::vector<std::string>{"GANTRY_MODEL=llama", "GANTRY_MODEL_DIR=" + models + "/llama"});
  CHECK(ModelCapabilities("fork serve.py", models, {"llama"}, {}).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

}  // namespace gantry::worker

namespace gantry::worker {

TEST_CASE("persistent handlers that exit at once or write garbage fail their requests, with the reason",
          "[worker][invoke]") {
  Outputs outputs;
  InvokeRunner runner({{"quits", "1.0.0", CapabilityConfig::Kind::kPersistent, {"false"}, {}},
                       {"garbage", "1.0.0", CapabilityConfig::Kind::kPersistent, {"echo", "garbage"}, {}}},
                      {}, [&](const v1::WorkerInvokeOutput& o) { return outputs.Add(o); });
  for (int i = 0; i < 3; ++i) {  // Restarted for every request, and fails the same way each time.
    std::string id = "q" + std::to_string(i);
    runner.Start(Command(id, "quits", "x"));
    auto q = outputs.Last(id);
    CHECK(q.error_code() == 14);
    CHECK(q.error_message().find("quits handler exited with code 1") != std::string::npos);
  }
  runner.Start(Command("g", "garbage", "x"));
  auto g = outputs.Last("g");
  CHECK(g.error_code() == 14);
  CHECK(g.error_message().find("not a frame") != std::string::npos);
}

namespace {

int ThreadsOfThisProcess() {
  int n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/task", ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec)) {
    ++n;
  }
  return n;
}

bool Gone(pid_t pid) { return kill(pid, 0) != 0 && errno == ESRCH; }

}  // namespace

TEST_CASE("200 exec invokes in flight hold no thread each, and each one's process is gone once cancelled",
          "[worker][invoke]") {
  constexpr int kInvokes = 200;
  Outputs outputs;
  InvokeRunner::Options options;
  options.max_concurrency = kInvokes;
  // Its pid first, then it waits: each invoke is in flight, its handler running.
  InvokeRunner runner({Exec("hold", {"sh", "-c", "echo $$; exec sleep 3600"})}, options,
                      [&](const v1::WorkerInvokeOutput& o) { return outputs.Add(o); });
  const int idle_threads = ThreadsOfThisProcess();
  for (int i = 0; i < kInvokes; ++i) runner.Start(Command("h" + std::to_string(i), "hold", ""));
  std::vector<pid_t> pids;
  {
    std::unique_lock<std::mutex> lock(outputs.mu);
    REQUIRE(outputs.cv.wait_for(lock, std::chrono::seconds(60), [&] { return outputs.seen.size() >= kInvokes; }));
    for (const auto& o : outputs.seen) {
      REQUIRE(o.error_code() == 0);
      pids.push_back(std::stoi(o.chunk().data()));
    }
  }
  CHECK(runner.active() == kInvokes);
  const int busy_threads = ThreadsOfThisProcess();
  INFO("threads: " << idle_threads << " idle, " << busy_threads << " with " << kInvokes << " invokes in flight");
  CHECK(busy_threads - idle_threads <= 2);

  for (int i = 0; i < kInvokes; ++i) runner.Cancel("h" + std::to_string(i));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  auto all_gone = [&] { return std::all_of(pids.begin(), pids.end(), Gone) && runner.active() == 0; };
  while (!all_gone() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // Polling what has no event to wait on.
  }
  CHECK(all_gone());
  std::lock_guard<std::mutex> lock(outputs.mu);
  CHECK(outputs.seen.size() == kInvokes);  // A cancelled invoke sends nothing more.
}

namespace {

// A persistent handler that says HELLO pause (when its argument is "hello"), writes N numbered
// 1 KiB chunks per request (N its payload) honouring PAUSE and RESUME, then a 20-byte chunk
// saying how often it was paused.
constexpr char kPausingHandler[] = R"(
import sys, threading
out, lock = sys.stdout.buffer, threading.Lock()
gates, pauses = {}, {}
def send(b):
    with lock:
        out.write(b)
        out.flush()
if sys.argv[1] == "hello":
    send(b"HELLO pause\n")
def serve(rid, n):
    for i in range(n):
        gates[rid].wait()
        body = b"%08d" % i + b"." * 1016
        send(b"CHUNK %s %d\n" % (rid, len(body)) + body)
    send(b"CHUNK %s 20\n" % rid + b"pauses=%-13d" % pauses[rid])
    send(b"END %s\n" % rid)
for line in iter(sys.stdin.buffer.readline, b""):
    kind, rid, *rest = line.split()
    if kind == b"REQ":
        n = int(sys.stdin.buffer.read(int(rest[0])))
        gates[rid], pauses[rid] = threading.Event(), 0
        gates[rid].set()
        threading.Thread(target=serve, args=(rid, n), daemon=True).start()
    elif kind == b"PAUSE":
        pauses[rid] += 1
        gates[rid].clear()
    elif kind == b"RESUME":
        gates[rid].set()
)";

}  // namespace

TEST_CASE("a persistent handler that says HELLO pause is paused for a slow client and finishes a long answer, and "
          "one that does not is cut off",
          "[worker][invoke]") {
  constexpr int kChunks = 20000;  // 20 MB: more than the 8 MiB a request may hold waiting.
  char dir[] = "/tmp/gantry-pausing-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  struct RemovedAtEnd {
    std::string dir;
    ~RemovedAtEnd() { std::filesystem::remove_all(dir); }
  } removed_at_end{dir};  // After each runner, and with it its handler, is gone.
  const std::string script = std::string(dir) + "/pausing.py";
  std::ofstream(script) << kPausingHandler;
  for (const std::string mode : {"hello", "silent"}) {
    INFO("the handler: " << mode);
    Outputs outputs;
    bool ended = false;  // Guarded by outputs.mu.
    InvokeRunner runner({{"pausing", "1.0.0", CapabilityConfig::Kind::kPersistent, {"python3", script, mode}, {}}}, {},
                        [&](const v1::WorkerInvokeOutput& o) {
                          std::lock_guard<std::mutex> lock(outputs.mu);
                          outputs.seen.push_back(o);
                          ended = ended || o.error_code() != 0 || o.chunk().last();
                          outputs.cv.notify_all();
                          return true;
                        });
    v1::InvokeCommand command = Command("long", "pausing", std::to_string(kChunks));
    command.set_credit(16);
    runner.Start(command);
    // A slow client: 16 chunks a millisecond at most, some 16 MB/s (the pace is the point here).
    std::unique_lock<std::mutex> lock(outputs.mu);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (!ended && std::chrono::steady_clock::now() < deadline) {
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      runner.AddCredit("long", 16);
      lock.lock();
    }
    REQUIRE(ended);
    const v1::WorkerInvokeOutput& last = outputs.seen.back();
    if (mode == "silent") {
      CHECK(last.error_code() == 8);  // RESOURCE_EXHAUSTED
      CHECK(last.error_message().find("read too slowly") != std::string::npos);
      continue;
    }
    // Its chunks, then the end: alone, or on the last chunk when both were read at once.
    CHECK(last.error_code() == 0);
    CHECK(last.chunk().last());
    std::vector<v1::InvokeChunk> chunks;
    for (const v1::WorkerInvokeOutput& o : outputs.seen) {
      if (!o.chunk().data().empty()) chunks.push_back(o.chunk());
    }
    REQUIRE(chunks.size() == kChunks + 1);
    CHECK(outputs.seen.size() - chunks.size() <= 1);
    int in_order = 0;
    for (int i = 0; i < kChunks; ++i) {
      char number[16];
      std::snprintf(number, sizeof(number), "%08d", i);
      in_order += chunks[i].data().rfind(number, 0) == 0 && chunks[i].sequence() == i;
    }
    CHECK(in_order == kChunks);
    const std::string pauses = chunks[kChunks].data();
    INFO(pauses);
    CHECK(pauses.rfind("pauses=", 0) == 0);
    CHECK(std::stoi(pauses.substr(7)) >= 1);
  }
}

// An exec handler's output is read no larger than the bytes left; a persistent handler's frame
// may overshoot them once.
TEST_CASE("a request granted bytes sends no chunk once they are spent", "[worker][invoke]") {
  constexpr int64_t kGrant = 2500;
  char dir[] = "/tmp/gantry-bytes-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  struct RemovedAtEnd {
    std::string dir;
    ~RemovedAtEnd() { std::filesystem::remove_all(dir); }
  } removed_at_end{dir};
  const std::string script = std::string(dir) + "/pausing.py";
  std::ofstream(script) << kPausingHandler;
  // 20 KiB from each: in one pipe read, or as twenty 1 KiB frames (and one of 20 bytes).
  const CapabilityConfig exec = Exec("bytes", {"head", "-c", "20480", "/dev/zero"});
  const CapabilityConfig persistent{"bytes", "1.0.0", CapabilityConfig::Kind::kPersistent, {"python3", script, "silent"}, {}};
  for (const CapabilityConfig& capability : {exec, persistent}) {
    const bool is_exec = capability.kind == CapabilityConfig::Kind::kExec;
    INFO((is_exec ? "exec" : "persistent"));
    std::mutex mu;
    std::condition_variable cv;
    int64_t granted = kGrant, sent = 0;  // Guarded by mu, as are the three below.
    int chunks = 0, beyond = 0;
    bool ended = false;
    InvokeRunner runner({capability}, {}, [&](const v1::WorkerInvokeOutput& o) {
      std::lock_guard<std::mutex> lock(mu);
      const int64_t size = static_cast<int64_t>(o.chunk().data().size());
      // A chunk may go while any byte is left; from an exec handler it fits in what is left.
      if (size > 0 && (sent >= granted || (is_exec && sent + size > granted))) ++beyond;
      sent += size;
      chunks += size > 0;
      ended = ended || o.error_code() != 0 || o.chunk().last();
      cv.notify_all();
      return true;
    });
    v1::InvokeCommand command = Command("b", "bytes", "20");
    command.set_credit(1000);  // Chunks are not what runs out.
    command.set_credit_bytes(kGrant);
    runner.Start(command);
    std::unique_lock<std::mutex> lock(mu);
    // A client that reads on only once all it allowed has come.
    while (cv.wait_for(lock, std::chrono::seconds(10), [&] { return ended || sent >= granted; }) && !ended) {
      granted += kGrant;  // Before the credit: the check above never sees a chunk sent on it first.
      lock.unlock();
      runner.AddCredit("b", 0, kGrant);
      lock.lock();
    }
    REQUIRE(ended);
    CHECK(beyond == 0);
    CHECK(sent == 20480 + (is_exec ? 0 : 20));
    CHECK(chunks >= 20480 / kGrant);  // Not one chunk of everything.
  }
}

}  // namespace gantry::worker
