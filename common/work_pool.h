// A fixed set of threads running jobs from a bounded queue: work that goes on after the call
// that asked for it has been answered (starting an acknowledged session). Bounded so that a
// burst cannot grow memory without limit: when the queue is full, TrySubmit says so and the
// caller does the work itself, which slows that caller down instead.
//
// Thread-safe. Jobs may block (they run on the pool's own threads).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"

namespace gantry {

class WorkPool {
 public:
  WorkPool(int threads, size_t max_queued) : max_queued_(max_queued) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
  }
  ~WorkPool() { Stop(); }
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  // Queues `job`; false (and `job` not kept) when max_queued jobs wait already or the pool has
  // stopped.
  bool TrySubmit(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ || queue_.size() >= max_queued_) return false;
      queue_.push_back(std::move(job));
    }
    wake_.notify_one();
    return true;
  }

  // Takes no more jobs, lets the running ones finish, and returns how many queued jobs were
  // dropped unrun (their owner must be able to recover them: see the caller). Idempotent.
  size_t Stop() {
    size_t dropped = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      dropped = queue_.size();
      queue_.clear();
    }
    wake_.notify_all();
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
    return dropped;
  }

  // Takes no more jobs and returns once every queued one has run: for jobs that must not be
  // dropped, because each owns what it works on. Idempotent.
  void Drain() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

  size_t queued() const {
    std::lock_guard<std::mutex> lock(mu_);
    return queue_.size();
  }

 private:
  void Run() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // Stopping (Stop empties the queue; Drain lets it run out).
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      job();
    }
  }

  const size_t max_queued_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace gantry
