#include "controller/worker_stream_channel.h"

#include "controller/worker_connect_reactor.h"

namespace gantry::controller {

bool WorkerStreamChannel::Send(const v1::ControllerMessage& message) {
  std::lock_guard<std::mutex> lock(mu_);
  return reactor_ != nullptr && reactor_->Enqueue(message);
}

void WorkerStreamChannel::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  if (reactor_ != nullptr) reactor_->Cancel();
}

void WorkerStreamChannel::Detach() {
  std::lock_guard<std::mutex> lock(mu_);
  reactor_ = nullptr;
}

}  // namespace gantry::controller
