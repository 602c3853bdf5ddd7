// A thread that runs a task every interval until stopped: for the background sweeps (session
// pruning, log retention). Stop wakes it at once, mid-wait; a run in progress finishes first.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/time/time.h"

namespace gantry {

class PeriodicTask {
 public:
  PeriodicTask() = default;
  ~PeriodicTask() { Stop(); }
  PeriodicTask(const PeriodicTask&) = delete;
  PeriodicTask& operator=(const PeriodicTask&) = delete;

  // Runs `task` every `interval`, the first time at once when `run_at_start`, else after one.
  void Start(absl::Duration interval, bool run_at_start, std::function<void()> task);
  void Stop();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace gantry
