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
// Lanes: a command for one session (its lane, the session id) runs after every earlier command
// of that session, so a session is started, stopped, hibernated and woken in the order sent; the
// sessions of different lanes run side by side on up to kThreads threads, so one session's start
// (a home, a cgroup, a keeper, waiting for its exec) does not hold up the next session's. A
// command of no lane ("") keeps the stream's order with everything: it runs once every earlier
// command has, and nothing later starts before it has run.
//
// Bounded: Push waits while kMaxQueued commands or kMaxQueuedBytes are waiting or running, so a
// controller sending faster than the worker can act meets the stream's flow control again.
// Thread-safe. The destructor runs what is queued, then joins.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"

namespace gantry::worker {

class CommandQueue {
 public:
  static constexpr size_t kMaxQueued = 1024;
  static constexpr size_t kMaxQueuedBytes = 64 << 20;
  // Sessions started at once: enough to keep two cores busy while starts wait on exec.
  static constexpr int kThreads = 4;

  CommandQueue();
  ~CommandQueue();
  CommandQueue(const CommandQueue&) = delete;
  CommandQueue& operator=(const CommandQueue&) = delete;

  // Queues `command` in `lane` ("" = none: in order with everything); `bytes`: what it holds,
  // for the bound. Waits while the queue is full.
  void Push(std::string lane, std::function<void()> command, size_t bytes);

 private:
  struct Queued {
    std::string lane;
    std::function<void()> command;
    size_t bytes;
  };
  void Run();
  // The first queued command that may run now, or queued_.end().
  std::deque<Queued>::iterator NextRunnable() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<Queued> queued_ ABSL_GUARDED_BY(mu_);  // Not yet started, in arrival order.
  std::set<std::string> running_lanes_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool unlaned_running_ ABSL_GUARDED_BY(mu_) = false;
  size_t held_ ABSL_GUARDED_BY(mu_) = 0;  // Queued or running: what the bound counts.
  size_t held_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;  // Last: started once the members above exist.
};

}  // namespace gantry::worker
