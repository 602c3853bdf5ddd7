#include "worker/event_loop.h"

#include <catch2/catch.hpp>

#include <sys/epoll.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <string>
#include <vector>

namespace gantry::worker {
namespace {

// Runs `task` on the loop and waits for it.
void OnLoop(EventLoop& loop, std::function<void()> task) {
  std::promise<void> done;
  REQUIRE(loop.Post([&] {
    task();
    done.set_value();
  }));
  REQUIRE(done.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready);
}

}  // namespace

TEST_CASE("event loop: tasks run on its thread in the order posted, and those posted before Stop all run",
          "[worker][event_loop]") {
  std::vector<int> order;  // The loop thread's until Stop returns.
  bool all_in_loop = true;
  {
    EventLoop loop;
    for (int i = 0; i < 1000; ++i) {
      REQUIRE(loop.Post([&, i] {
        all_in_loop = all_in_loop && loop.InLoop();
        order.push_back(i);
      }));
    }
    CHECK_FALSE(loop.InLoop());
    loop.Stop();
    CHECK_FALSE(loop.Post([] {}));
  }
  REQUIRE(order.size() == 1000);
  for (int i = 0; i < 1000; ++i) CHECK(order[i] == i);
  CHECK(all_in_loop);
}

TEST_CASE("event loop: a watched pipe calls back while readable, not while changed to nothing or unwatched",
          "[worker][event_loop]") {
  EventLoop loop;
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  std::atomic<int> calls{0};
  std::promise<void> first;
  OnLoop(loop, [&] {
    REQUIRE(loop.Watch(fds[0], EPOLLIN, [&](uint32_t events) {
      CHECK((events & EPOLLIN) != 0);
      if (calls++ == 0) first.set_value();
      loop.Change(fds[0], 0);  // Level-triggered: left as it is, it would call again at once.
    }));
  });
  REQUIRE(write(fds[1], "x", 1) == 1);
  REQUIRE(first.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  OnLoop(loop, [] {});  // A turn of the loop with the byte still there.
  CHECK(calls == 1);
  OnLoop(loop, [&] { loop.Change(fds[0], EPOLLIN); });
  OnLoop(loop, [] {});
  OnLoop(loop, [&] { loop.Unwatch(fds[0]); });
  const int seen = calls;
  CHECK(seen >= 2);
  OnLoop(loop, [] {});
  CHECK(calls == seen);
  close(fds[0]);
  close(fds[1]);
}

TEST_CASE("event loop: an fd unwatched by an earlier callback of the same wake-up is not called, even if its number "
          "is watched again",
          "[worker][event_loop]") {
  EventLoop loop;
  int a[2], b[2];
  REQUIRE(pipe(a) == 0);
  REQUIRE(pipe(b) == 0);
  std::vector<std::string> called;
  OnLoop(loop, [&] {
    // Whichever comes first unwatches the other and watches its number anew, for nothing.
    auto first = [&](int mine, int other, const char* name) {
      return [&, mine, other, name](uint32_t) {
        called.push_back(name);
        loop.Unwatch(mine);
        loop.Unwatch(other);
        REQUIRE(loop.Watch(other, 0, [&](uint32_t) { called.push_back("stale"); }));
      };
    };
    REQUIRE(loop.Watch(a[0], EPOLLIN, first(a[0], b[0], "a")));
    REQUIRE(loop.Watch(b[0], EPOLLIN, first(b[0], a[0], "b")));
    // Both readable before the loop waits again: one wake-up reports both.
    REQUIRE(write(a[1], "x", 1) == 1);
    REQUIRE(write(b[1], "x", 1) == 1);
  });
  OnLoop(loop, [] {});
  OnLoop(loop, [&] {
    loop.Unwatch(a[0]);
    loop.Unwatch(b[0]);
  });
  CHECK(called.size() == 1);
  for (int fd : {a[0], a[1], b[0], b[1]}) close(fd);
}

TEST_CASE("event loop: timers run in the order they are due, and a cancelled one never runs", "[worker][event_loop]") {
  EventLoop loop;
  std::vector<int> ran;
  std::promise<void> last;
  OnLoop(loop, [&] {
    loop.After(absl::Milliseconds(30), [&] { ran.push_back(3); });
    const EventLoop::TimerId cancelled = loop.After(absl::Milliseconds(20), [&] { ran.push_back(99); });
    loop.After(absl::Milliseconds(10), [&] { ran.push_back(1); });
    loop.After(absl::Milliseconds(20), [&] { ran.push_back(2); });
    loop.After(absl::Milliseconds(40), [&] { last.set_value(); });
    loop.CancelTimer(cancelled);
    loop.CancelTimer(cancelled);  // Twice: nothing.
  });
  REQUIRE(last.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  OnLoop(loop, [&] { CHECK(ran == std::vector<int>{1, 2, 3}); });
}

}  // namespace gantry::worker
