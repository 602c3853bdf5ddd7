#include "controller/worker_stream_channel.h"

#include <utility>

namespace gantry::controller {

WorkerStreamChannel::WorkerStreamChannel(grpc::ServerContext* ctx, Stream* stream)
    : ctx_(ctx), stream_(stream), writer_([this] { WriteLoop(); }) {}

WorkerStreamChannel::~WorkerStreamChannel() { Invalidate(); }

bool WorkerStreamChannel::Send(const v1::ControllerMessage& message) {
  const size_t bytes = message.ByteSizeLong();
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_ || queued_bytes_ + bytes > kMaxQueuedBytes) return false;
  queue_.push_back(message);
  queued_bytes_ += bytes;
  cv_.notify_all();
  return true;
}

void WorkerStreamChannel::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  if (context_valid_) ctx_->TryCancel();
}

void WorkerStreamChannel::Invalidate() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    queue_.clear();
    queued_bytes_ = 0;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  std::lock_guard<std::mutex> lock(mu_);
  context_valid_ = false;
}

void WorkerStreamChannel::WriteLoop() {
  while (true) {
    v1::ControllerMessage next;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return closed_ || !queue_.empty(); });
      if (closed_) return;
      next = std::move(queue_.front());
      queue_.pop_front();
      queued_bytes_ -= std::min(queued_bytes_, next.ByteSizeLong());
    }
    if (!stream_->Write(next)) {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
      queue_.clear();
      queued_bytes_ = 0;
      return;
    }
  }
}

}  // namespace gantry::controller
