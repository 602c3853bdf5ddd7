#include "worker/command_queue.h"

#include <utility>

namespace gantry::worker {

CommandQueue::CommandQueue() : thread_([this] { Run(); }) {}

CommandQueue::~CommandQueue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void CommandQueue::Push(std::function<void()> command, size_t bytes) {
  std::unique_lock<std::mutex> lock(mu_);
  // One command larger than the byte bound still goes, alone.
  changed_.wait(lock, [&] {
    return queued_.empty() || (queued_.size() < kMaxQueued && queued_bytes_ + bytes <= kMaxQueuedBytes);
  });
  queued_.push_back(Queued{std::move(command), bytes});
  queued_bytes_ += bytes;
  changed_.notify_all();
}

void CommandQueue::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    changed_.wait(lock, [&] { return closing_ || !queued_.empty(); });
    if (queued_.empty()) return;  // Closing, and everything queued has run.
    Queued next = std::move(queued_.front());
    queued_.pop_front();
    lock.unlock();
    next.command();
    lock.lock();
    queued_bytes_ -= next.bytes;  // Counted until run, so the bound covers the one running too.
    changed_.notify_all();
  }
}

}  // namespace gantry::worker
