// One thread that waits on many file descriptors and timers at once (epoll), and runs tasks
// other threads post to it: how the worker serves any number of invokes without a thread each.
// Everything registered with the loop is touched only on the loop's thread, so the state it
// drives needs no lock.
//
// Post is thread-safe. Watch, Change, Unwatch, After and CancelTimer are for the loop's thread
// only (from a task, a watch's callback or a timer). Callbacks must not block for long: every
// other watch waits while one runs.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace gantry::worker {

class EventLoop {
 public:
  using FdCallback = std::function<void(uint32_t events)>;  // EPOLLIN, EPOLLOUT, EPOLLHUP, EPOLLERR
  using TimerId = uint64_t;

  EventLoop();   // Starts the thread.
  ~EventLoop();  // Stop().
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs `task` on the loop's thread after every task posted before it. False (and `task`
  // dropped) once Stop has begun.
  bool Post(std::function<void()> task);
  // Runs the tasks posted so far, then ends the thread. Watches and timers left are dropped
  // (their owners cleaned up in a task before this). Idempotent; not from the loop's thread.
  void Stop();
  bool InLoop() const { return std::this_thread::get_id() == thread_id_; }

  // `callback` runs whenever `fd` is ready for `events` (level-triggered) until Unwatch. The
  // fd must stay open until then. False if the kernel refused (out of epoll watches).
  bool Watch(int fd, uint32_t events, FdCallback callback);
  // 0: registered, but waiting for nothing but what epoll always reports (EPOLLHUP, EPOLLERR):
  // to hear nothing at all from an fd for a while, Unwatch it.
  void Change(int fd, uint32_t events);
  void Unwatch(int fd);
  TimerId After(absl::Duration delay, std::function<void()> callback);
  void CancelTimer(TimerId id);  // A timer that already ran or was cancelled: nothing.

 private:
  struct Watched {
    uint32_t generation;  // Told apart from an earlier fd of the same number in one batch.
    FdCallback callback;
  };

  void Run();
  void RunTasks();
  void RunDueTimers();
  int MillisToNextTimer() const;

  const int epoll_fd_;
  const int wake_fd_;  // An eventfd: Post's nudge.
  std::thread::id thread_id_;
  std::thread thread_;

  std::mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  // The loop thread's own.
  uint32_t next_generation_ = 1;
  std::unordered_map<int, Watched> watched_;
  TimerId next_timer_ = 1;
  std::multimap<absl::Time, TimerId> due_;
  std::unordered_map<TimerId, std::pair<absl::Time, std::function<void()>>> timers_;
};

}  // namespace gantry::worker
