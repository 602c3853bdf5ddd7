#include "common/periodic_task.h"

namespace gantry {

void PeriodicTask::Start(absl::Duration interval, bool run_at_start, std::function<void()> task) {
  thread_ = std::thread([this, interval, run_at_start, task = std::move(task)] {
    for (bool first = true;; first = false) {
      if (!first || run_at_start) task();
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, absl::ToChronoMilliseconds(interval), [&] { return stopping_; })) return;
    }
  });
}

void PeriodicTask::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace gantry
