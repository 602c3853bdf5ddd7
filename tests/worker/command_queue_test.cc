// CommandQueue: the controller's commands run in arrival order off the reading thread (within a
// session's lane; one of no lane in order with all), sessions side by side, every one queued runs
// before the queue goes away, and a full queue holds the reader back.
#include "worker/command_queue.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace gantry::worker {

TEST_CASE("worker command queue: commands run in arrival order off the reading thread and all before it closes",
          "[worker]") {
  std::mutex mu;
  std::vector<int> ran;
  std::atomic<bool> on_reader{false};
  const std::thread::id reader = std::this_thread::get_id();
  {
    CommandQueue queue;
    for (int i = 0; i < 100; ++i) {
      queue.Push("", [&, i] {
        if (std::this_thread::get_id() == reader) on_reader = true;
        std::lock_guard<std::mutex> lock(mu);
        ran.push_back(i);
      }, 16);
    }
  }
  std::vector<int> expected;
  for (int i = 0; i < 100; ++i) expected.push_back(i);
  CHECK(ran == expected);
  CHECK_FALSE(on_reader);
}

TEST_CASE("worker command queue: a full queue holds the reader back until a command has run", "[worker]") {
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  std::promise<void> first_running;
  std::atomic<bool> third_pushed{false};
  CommandQueue queue;
  queue.Push("", [&] {
    first_running.set_value();
    open.wait();
  }, 0);
  first_running.get_future().wait();
  // One command as large as the whole bound still goes, alone...
  queue.Push("", [] {}, CommandQueue::kMaxQueuedBytes);
  // ...and the next waits for room.
  std::thread reader([&] {
    queue.Push("", [] {}, 1);
    third_pushed = true;
  });
  // A negative observation needs a while: Push returning at all while the queue is full fails it.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK_FALSE(third_pushed);
  gate.set_value();
  reader.join();
  CHECK(third_pushed);
}

TEST_CASE("worker command queue: one session's commands run in order while another session's run beside them, and "
          "a command of no lane waits for all before it",
          "[worker]") {
  std::mutex mu;
  std::vector<std::string> ran;
  auto note = [&](const std::string& what) {
    std::lock_guard<std::mutex> lock(mu);
    ran.push_back(what);
  };
  std::promise<void> release_a;
  std::shared_future<void> a_released = release_a.get_future().share();
  std::promise<void> b_ran;
  std::promise<void> barrier_ran;
  {
    CommandQueue queue;
    queue.Push("a", [&] {
      a_released.wait();  // Session a's start is slow...
      note("a1");
    }, 0);
    queue.Push("a", [&] { note("a2"); }, 0);
    queue.Push("b", [&] {
      note("b1");  // ...and session b's runs meanwhile.
      b_ran.set_value();
    }, 0);
    queue.Push("", [&] {
      note("stream");
      barrier_ran.set_value();
    }, 0);
    queue.Push("c", [&] { note("c1"); }, 0);
    b_ran.get_future().wait();  // Before a1 has run: would hang if b waited for a.
    {
      std::lock_guard<std::mutex> lock(mu);
      CHECK(ran == std::vector<std::string>{"b1"});
    }
    release_a.set_value();
    barrier_ran.get_future().wait();
  }
  // a in order; the unlaned command after a1, a2 and b1; c, pushed after it, after it.
  CHECK(ran == std::vector<std::string>{"b1", "a1", "a2", "stream", "c1"});
}

}  // namespace gantry::worker
