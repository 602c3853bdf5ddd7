#include "worker/log_streamer.h"

#include <dirent.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"

namespace gantry::worker {
namespace {

constexpr char kSession[] = "session-1";

int ThreadsOfThisProcess() {
  int n = 0;
  DIR* dir = opendir("/proc/self/task");
  REQUIRE(dir != nullptr);
  while (dirent* e = readdir(dir)) n += e->d_name[0] != '.';
  closedir(dir);
  return n;
}

// What each stream was sent, and a wait for a condition on it.
struct Sent {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::string> text;  // Messages, one per line, by stream id.
  std::map<std::string, int> batches;
  std::map<std::string, v1::WorkerLogLines> end;
  std::map<std::string, int> granted;  // Credit given, by stream id (set before it is given).
  int beyond = 0;                      // Batches sent without credit for them.

  bool Add(const v1::WorkerLogLines& batch) {
    std::lock_guard<std::mutex> lock(mu);
    const std::string& id = batch.stream_id();
    if (++batches[id] > granted[id]) ++beyond;
    for (const auto& e : batch.entries()) absl::StrAppend(&text[id], e.message(), "\n");
    if (batch.end()) end[id] = batch;
    cv.notify_all();
    return true;
  }
  template <typename Predicate>
  bool WaitFor(Predicate ready) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(20), ready);
  }
};

v1::StreamLogsCommand Follow(const std::string& stream_id, int credit) {
  v1::StreamLogsCommand c;
  c.set_stream_id(stream_id);
  c.set_session_id(kSession);
  c.set_follow(true);
  c.set_credit(credit);
  return c;
}

struct Fixture {
  std::string dir;
  std::shared_ptr<SessionLog> log;
  std::atomic<bool> running{true};
  Sent sent;

  Fixture() {
    char tmpl[] = "/tmp/gantry-log-streamer-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    auto created = SessionLog::Create(dir + "/" + kSession + ".log", 1 << 20);
    REQUIRE(created.ok());
    log = *created;
  }
  ~Fixture() { std::filesystem::remove_all(dir); }

  // Its followers look whether the process is gone once an hour unless told otherwise: what
  // reaches them sooner came because the log woke them.
  std::unique_ptr<LogStreamer> Streamer(LogStreamer::Options options = {4096, absl::Hours(1)}) {
    return std::make_unique<LogStreamer>(
        dir, [this](const std::string& id) { return id == kSession ? log : nullptr; },
        [this](const v1::WorkerLogLines& b) { return sent.Add(b); },
        [this](const std::string&) { return running.load(); }, options);
  }
  void Start(LogStreamer& streamer, const v1::StreamLogsCommand& command) {
    {
      std::lock_guard<std::mutex> lock(sent.mu);
      sent.granted[command.stream_id()] += command.credit();
    }
    streamer.Start(command);
  }
  void Grant(LogStreamer& streamer, const std::string& id, int credit) {
    {
      std::lock_guard<std::mutex> lock(sent.mu);
      sent.granted[id] += credit;
    }
    streamer.AddCredit(id, credit);
  }
};

}  // namespace

TEST_CASE("log streamer: 1,000 followers of one log hold no thread each, each hears every line as it is written "
          "and the end when the output closes",
          "[worker][logs]") {
  constexpr int kFollowers = 1000;
  Fixture f;
  f.log->AppendNote("before\n");
  const int idle = ThreadsOfThisProcess();
  auto streamer = f.Streamer();
  for (int i = 0; i < kFollowers; ++i) f.Start(*streamer, Follow(absl::StrCat("s", i), 8));
  auto all_have = [&](const std::string& text) {
    for (int i = 0; i < kFollowers; ++i) {
      if (f.sent.text[absl::StrCat("s", i)] != text) return false;
    }
    return true;
  };
  REQUIRE(f.sent.WaitFor([&] { return all_have("before\n"); }));
  // The loop's thread, and nothing per stream.
  CHECK(ThreadsOfThisProcess() <= idle + 1);
  f.log->AppendNote("after\n");  // Written while every follower waits at the end: each is woken.
  REQUIRE(f.sent.WaitFor([&] { return all_have("before\nafter\n"); }));
  // Each line came as a batch of its own, on a credit of 8: nobody was sent the end yet.
  {
    std::lock_guard<std::mutex> lock(f.sent.mu);
    CHECK(f.sent.end.empty());
  }
  // More batches than the credit: only after more is granted.
  for (int i = 0; i < kFollowers; ++i) f.Grant(*streamer, absl::StrCat("s", i), 8);
  f.log->Close();
  REQUIRE(f.sent.WaitFor([&] { return static_cast<int>(f.sent.end.size()) == kFollowers; }));
  std::lock_guard<std::mutex> lock(f.sent.mu);
  CHECK(f.sent.beyond == 0);
  CHECK(f.sent.end.begin()->second.error_code() == 0);
}

TEST_CASE("log streamer: a reader that grants no credit is sent no more batches, and the rest comes as it grants",
          "[worker][logs]") {
  Fixture f;
  std::string all;
  for (int i = 0; i < 20000; ++i) absl::StrAppend(&all, "line ", i, " ", std::string(40, 'x'), "\n");  // ~1 MB
  f.log->Append(all.data(), all.size());
  f.log->Close();
  auto streamer = f.Streamer();
  v1::StreamLogsCommand tail = Follow("t", 1);
  tail.set_follow(false);
  f.Start(*streamer, tail);
  // A client that reads on only once all it allowed has come.
  int granted = 1;
  while (f.sent.WaitFor([&] { return f.sent.batches["t"] >= granted || f.sent.end.count("t") != 0; })) {
    {
      std::lock_guard<std::mutex> lock(f.sent.mu);
      if (f.sent.end.count("t") != 0) break;
    }
    ++granted;
    f.Grant(*streamer, "t", 1);
  }
  std::lock_guard<std::mutex> lock(f.sent.mu);
  CHECK(f.sent.beyond == 0);
  REQUIRE(f.sent.end.count("t") == 1);
  CHECK(f.sent.text["t"] == all);
  CHECK(f.sent.batches["t"] > 16);  // In batches of at most 64 KiB, and the end.
}

TEST_CASE("log streamer: following ends when the process is gone though its pipe stays open", "[worker][logs]") {
  Fixture f;
  f.log->AppendNote("last words\n");
  auto streamer = f.Streamer({4096, absl::Milliseconds(100)});
  f.Start(*streamer, Follow("f", 8));
  REQUIRE(f.sent.WaitFor([&] { return f.sent.text["f"] == "last words\n"; }));
  f.running = false;  // Nothing wakes the follower for this but its own look.
  REQUIRE(f.sent.WaitFor([&] { return f.sent.end.count("f") != 0; }));
  std::lock_guard<std::mutex> lock(f.sent.mu);
  CHECK(f.sent.end["f"].error_code() == 0);
}

TEST_CASE("log streamer: bad ids, unknown sessions and one stream too many are refused, naming why",
          "[worker][logs]") {
  Fixture f;
  auto streamer = f.Streamer({/*max_streams=*/2, absl::Hours(1)});
  v1::StreamLogsCommand bad = Follow("d", 8);
  bad.set_session_id("../../etc/passwd");
  f.Start(*streamer, bad);
  v1::StreamLogsCommand unknown = Follow("e", 8);
  unknown.set_session_id("session-2");
  f.Start(*streamer, unknown);
  // Refused, they hold no place: two more are served, a third is not.
  f.Start(*streamer, Follow("a", 8));
  f.Start(*streamer, Follow("b", 8));
  f.Start(*streamer, Follow("c", 8));
  REQUIRE(f.sent.WaitFor([&] { return f.sent.end.size() == 3; }));
  std::lock_guard<std::mutex> lock(f.sent.mu);
  CHECK(f.sent.end["c"].error_code() == 8);
  CHECK(f.sent.end["c"].error_message() == "this worker already serves 2 log streams; retry later");
  CHECK(f.sent.end["d"].error_code() == 3);
  CHECK(f.sent.end["e"].error_code() == 5);
  CHECK(f.sent.end.count("a") == 0);
}

}  // namespace gantry::worker
