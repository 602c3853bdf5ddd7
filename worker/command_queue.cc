#include "worker/command_queue.h"

#include <utility>

namespace gantry::worker {

CommandQueue::CommandQueue() {
  for (int i = 0; i < kThreads; ++i) threads_.emplace_back([this] { Run(); });
}

CommandQueue::~CommandQueue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
  }
  changed_.notify_all();
  for (auto& t : threads_) t.join();
}

void CommandQueue::Push(std::string lane, std::function<void()> command, size_t bytes) {
  std::unique_lock<std::mutex> lock(mu_);
  // One command larger than the byte bound still goes, alone.
  changed_.wait(lock, [&] {
    return held_ == 0 || (held_ < kMaxQueued && held_bytes_ + bytes <= kMaxQueuedBytes);
  });
  queued_.push_back(Queued{std::move(lane), std::move(command), bytes});
  ++held_;
  held_bytes_ += bytes;
  changed_.notify_all();
}

std::deque<CommandQueue::Queued>::iterator CommandQueue::NextRunnable() {
  if (unlaned_running_) return queued_.end();
  std::set<std::string> waiting;  // Lanes with an earlier command not yet started.
  for (auto it = queued_.begin(); it != queued_.end(); ++it) {
    if (it->lane.empty()) {
      // In order with everything: only once all before it have run, and nothing after it first.
      return it == queued_.begin() && running_ == 0 ? it : queued_.end();
    }
    if (running_lanes_.count(it->lane) == 0 && waiting.count(it->lane) == 0) return it;
    waiting.insert(it->lane);
  }
  return queued_.end();
}

void CommandQueue::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    auto next = queued_.end();
    changed_.wait(lock, [&] {
      next = NextRunnable();
      return next != queued_.end() || (closing_ && queued_.empty());
    });
    if (next == queued_.end()) return;  // Closing, and everything queued has run.
    Queued command = std::move(*next);
    queued_.erase(next);
    ++running_;
    if (command.lane.empty()) {
      unlaned_running_ = true;
    } else {
      running_lanes_.insert(command.lane);
    }
    lock.unlock();
    command.command();
    lock.lock();
    --running_;
    if (command.lane.empty()) {
      unlaned_running_ = false;
    } else {
      running_lanes_.erase(command.lane);
    }
    // Counted until run, so the bound covers the ones running too.
    --held_;
    held_bytes_ -= command.bytes;
    changed_.notify_all();
  }
}

}  // namespace gantry::worker
