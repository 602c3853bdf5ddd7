// WorkPool: jobs run on the pool's threads, at most `threads` at once; past max_queued waiting,
// TrySubmit refuses (the caller does the work); Stop lets running jobs finish and drops the
// queued ones, counting them.
#include "common/work_pool.h"

#include <catch2/catch.hpp>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace gantry {
namespace {

// Jobs that block until released, counting how many have started and finished.
class Gate {
 public:
  std::function<void()> Job() {
    return [this] {
      std::unique_lock<std::mutex> lock(mu_);
      ++started_;
      changed_.notify_all();
      changed_.wait(lock, [this] { return open_; });
      ++finished_;
      changed_.notify_all();
    };
  }
  void WaitStarted(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait(lock, [&] { return started_ >= n; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    changed_.notify_all();
  }
  void WaitFinished(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait(lock, [&] { return finished_ >= n; });
  }
  int started() {
    std::lock_guard<std::mutex> lock(mu_);
    return started_;
  }
  int finished() {
    std::lock_guard<std::mutex> lock(mu_);
    return finished_;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  bool open_ = false;
  int started_ = 0, finished_ = 0;
};

}  // namespace

TEST_CASE("work pool: runs at most its threads at once and refuses past max_queued", "[work_pool]") {
  Gate gate;
  WorkPool pool(2, 3);
  REQUIRE(pool.TrySubmit(gate.Job()));
  REQUIRE(pool.TrySubmit(gate.Job()));
  gate.WaitStarted(2);  // Both threads busy.
  for (int i = 0; i < 3; ++i) REQUIRE(pool.TrySubmit(gate.Job()));
  CHECK(pool.queued() == 3);
  CHECK_FALSE(pool.TrySubmit(gate.Job()));  // Full: the caller's to do.
  CHECK(gate.started() == 2);
  gate.Open();
  gate.WaitFinished(5);
  CHECK(pool.queued() == 0);
  CHECK(pool.Stop() == 0);
  CHECK(gate.finished() == 5);
}

TEST_CASE("work pool: Stop finishes running jobs, drops queued ones and takes no more", "[work_pool]") {
  Gate gate;
  WorkPool pool(1, 10);
  REQUIRE(pool.TrySubmit(gate.Job()));
  gate.WaitStarted(1);
  REQUIRE(pool.TrySubmit(gate.Job()));
  REQUIRE(pool.TrySubmit(gate.Job()));
  size_t dropped = 0;
  std::thread stopper([&] { dropped = pool.Stop(); });  // Waits for the running job.
  while (pool.queued() != 0) std::this_thread::yield();  // Stop has cleared the queue.
  gate.Open();
  stopper.join();
  CHECK(dropped == 2);
  CHECK(gate.finished() == 1);
  CHECK_FALSE(pool.TrySubmit(gate.Job()));
  CHECK(pool.Stop() == 0);
}

TEST_CASE("work pool: Drain runs every queued job before it returns and takes no more", "[work_pool]") {
  Gate gate;
  WorkPool pool(1, 10);
  REQUIRE(pool.TrySubmit(gate.Job()));
  gate.WaitStarted(1);
  REQUIRE(pool.TrySubmit(gate.Job()));
  REQUIRE(pool.TrySubmit(gate.Job()));
  std::thread drainer([&] { pool.Drain(); });
  gate.Open();
  drainer.join();
  CHECK(gate.finished() == 3);  // The queued ones too: each owns what it works on.
  CHECK_FALSE(pool.TrySubmit(gate.Job()));
  CHECK(pool.Stop() == 0);
}

}  // namespace gantry
