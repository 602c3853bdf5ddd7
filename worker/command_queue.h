// The controller's commands to this worker, run in arrival order on a thread of their own.
//
// Why not on the thread that reads the stream: with gRPC's synchronous client, the connection
// is read (pings acknowledged included) only while some thread waits in a call on it. A read
// loop that starts 500 sessions one by one (a home, a log, a cgroup and a spawn each) spends
// seconds outside Read, the keepalive's ping acknowledgements sit unread, and the worker's own
// keepalive drops a healthy stream (seen in the suite: "keepalive watchdog timeout" on a worker
// whose controller was answering, and every one of its 500 sessions FAILED). Here the reader
// only queues and goes back to Read.
//
// Bounded: Push waits while kMaxQueued commands or kMaxQueuedBytes are waiting, so a controller
// sending faster than the worker can act meets the stream's flow control again, as before.
// Thread-safe. The destructor runs what is queued, then joins.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/base/thread_annotations.h"

namespace gantry::worker {

class CommandQueue {
 public:
  static constexpr size_t kMaxQueued = 1024;
  static constexpr size_t kMaxQueuedBytes = 64 << 20;

  CommandQueue();
  ~CommandQueue();
  CommandQueue(const CommandQueue&) = delete;
  CommandQueue& operator=(const CommandQueue&) = delete;

  // Queues `command` (`bytes`: what it holds, for the bound); waits while the queue is full.
  void Push(std::function<void()> command, size_t bytes);

 private:
  struct Queued {
    std::function<void()> command;
    size_t bytes;
  };
  void Run();

  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<Queued> queued_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // Last: started once the members above exist.
};

}  // namespace gantry::worker
