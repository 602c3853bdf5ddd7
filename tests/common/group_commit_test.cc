// GroupCommit: what waits while a write is in progress goes out together next, oldest first, in
// batches of at most max_batch; keys do not wait for each other; a caller still queued at its
// deadline leaves unwritten.
#include "common/group_commit.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>


namespace gantry {
namespace {

struct Item {
  int n = 0;
  int batch = -1;  // Which write took it: set by the writer.
};

// A writer that records each batch and, while `hold` is set, blocks every write on `key_held`
// until released, so the test decides when a write ends.
class ScriptedWriter {
 public:
  void Write(const std::string& key, const std::vector<Item*>& batch) {
    std::unique_lock<std::mutex> lock(mu_);
    const int index = static_cast<int>(batches_.size());
    std::vector<int> ns;
    for (Item* item : batch) {
      item->batch = index;
      ns.push_back(item->n);
    }
    batches_.push_back(ns);
    ++writing_;
    changed_.notify_all();
    changed_.wait(lock, [&] { return key != key_held_ || released_; });
    --writing_;
  }
  void Hold(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    key_held_ = key;
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    changed_.notify_all();
  }
  // Waits (up to 10 s) until a write is in progress; false if none began.
  bool WaitWriting() {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return writing_ > 0; });
  }
  std::vector<std::vector<int>> batches() {
    std::lock_guard<std::mutex> lock(mu_);
    return batches_;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::string key_held_;
  bool released_ = false;
  int writing_ = 0;
  std::vector<std::vector<int>> batches_;
};

// True once `done` holds, polled each millisecond for up to 10 s: GroupCommit signals no one
// when an item joins its queue (and the unit tests link no test support library).
bool Eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 10000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return done();
}

}  // namespace

TEST_CASE("group commit: what queues behind a write goes out together next in arrival order and max_batch at a time",
          "[group_commit]") {
  ScriptedWriter writer;
  writer.Hold("c1");
  GroupCommit<Item> commits([&](const std::vector<Item*>& batch) { writer.Write("c1", batch); }, 4);
  std::vector<Item> items(9);
  std::vector<char> written(9, 0);  // Each thread's answer (Catch's CHECK is not thread-safe).
  std::vector<std::thread> threads;
  // The first becomes the writer and is held; the other eight queue, one after another.
  items[0].n = 0;
  threads.emplace_back([&] { written[0] = commits.Submit("c1", &items[0], absl::InfiniteFuture()); });
  REQUIRE(writer.WaitWriting());
  for (int i = 1; i < 9; ++i) {
    items[static_cast<size_t>(i)].n = i;
    threads.emplace_back([&, i] {
      const auto k = static_cast<size_t>(i);
      written[k] = commits.Submit("c1", &items[k], absl::InfiniteFuture());
    });
    REQUIRE(Eventually([&] { return commits.queued() == static_cast<size_t>(i); }));
  }
  writer.Release();
  for (auto& t : threads) t.join();
  CHECK(commits.queued() == 0);
  const std::vector<std::vector<int>> expected{{0}, {1, 2, 3, 4}, {5, 6, 7, 8}};
  CHECK(writer.batches() == expected);
  CHECK(written == std::vector<char>(9, 1));
}

TEST_CASE("group commit: a write on one key holds back no other key and a caller queued past its deadline leaves unwritten",
          "[group_commit]") {
  ScriptedWriter writer;
  writer.Hold("held");
  std::mutex key_mu;
  std::string next_key = "held";
  GroupCommit<Item> commits([&](const std::vector<Item*>& batch) {
    std::string key;
    {
      std::lock_guard<std::mutex> lock(key_mu);
      key = next_key;
    }
    writer.Write(key, batch);
  });
  Item first, late, other;
  bool first_written = false;
  std::thread holder([&] { first_written = commits.Submit("held", &first, absl::InfiniteFuture()); });
  REQUIRE(writer.WaitWriting());
  {
    std::lock_guard<std::mutex> lock(key_mu);
    next_key = "free";
  }
  // Another key is written at once, on its caller's thread, while "held" is still being written.
  CHECK(commits.Submit("free", &other, absl::InfiniteFuture()));
  CHECK(other.batch == 1);
  // Queued behind the held write until its deadline: not written, and out of the queue.
  const absl::Time start = absl::Now();
  CHECK_FALSE(commits.Submit("held", &late, start + absl::Milliseconds(200)));
  CHECK(absl::Now() - start >= absl::Milliseconds(200));
  CHECK(commits.queued() == 0);
  writer.Release();
  holder.join();
  CHECK(first_written);
  CHECK(late.batch == -1);
  CHECK(writer.batches().size() == 2);
}

}  // namespace gantry
