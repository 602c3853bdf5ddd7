#include "controller/worker_connect_reactor.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/identity.h"
#include "common/status.h"
#include "controller/worker_stream_channel.h"

namespace gantry::controller {

WorkerConnectReactor* WorkerConnectReactor::Start(const WorkerConnectDeps& deps, grpc::CallbackServerContext* context) {
  return new WorkerConnectReactor(deps, context);
}

WorkerConnectReactor::WorkerConnectReactor(const WorkerConnectDeps& deps, grpc::CallbackServerContext* context)
    : deps_(deps), context_(context) {
  auto identity = RequirePeerRole(context->auth_context().get(), Role::kWorker, "WorkerService");
  if (!identity.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    EndLocked(ToGrpcStatus(identity.status()));
    return;
  }
  worker_name_ = identity->name;
  StartRead(&in_);
}

void WorkerConnectReactor::OnReadDone(bool ok) {
  if (!ok) {
    if (!attached_) {
      std::lock_guard<std::mutex> lock(mu_);
      EndLocked(grpc::Status::CANCELLED);
      return;
    }
    Lost(context_->IsCancelled() ? "missed heartbeats or cancelled" : "stream closed", absl::OkStatus());
    return;
  }
  if (!attached_) {
    TakeHello();
    return;
  }
  absl::Status handled = Dispatch();
  if (!handled.ok()) {
    Lost(absl::StrCat("malformed message: ", handled.message()), handled);
    return;
  }
  StartRead(&in_);
}

void WorkerConnectReactor::TakeHello() {
  if (in_.msg_case() != v1::WorkerMessage::kHello) {
    std::lock_guard<std::mutex> lock(mu_);
    EndLocked(ToGrpcStatus(absl::InvalidArgumentError("the first message on Connect must be hello")));
    return;
  }
  channel_ = std::make_shared<WorkerStreamChannel>(this);
  absl::Status attached = deps_.fleet->Attach(worker_name_, in_.hello(), channel_);
  if (!attached.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    EndLocked(ToGrpcStatus(attached));
    return;
  }
  attached_ = true;
  StartRead(&in_);
}

absl::Status WorkerConnectReactor::Dispatch() {
  switch (in_.msg_case()) {
    case v1::WorkerMessage::kHeartbeat:
      deps_.fleet->Heartbeat(worker_name_, in_.heartbeat());
      return absl::OkStatus();
    case v1::WorkerMessage::kSessionEvent:
      return deps_.fleet->OnWorkerEvent(worker_name_, in_.session_event());
    case v1::WorkerMessage::kLogs:
      deps_.logs->Deliver(worker_name_, std::move(*in_.mutable_logs()));
      return absl::OkStatus();
    case v1::WorkerMessage::kMetrics:
      deps_.fleet->OnMetrics(worker_name_, in_.metrics());
      return absl::OkStatus();
    case v1::WorkerMessage::kInvokeOutput:
      deps_.invokes->Deliver(worker_name_, std::move(*in_.mutable_invoke_output()));
      return absl::OkStatus();
    default:
      return absl::InvalidArgumentError("WorkerMessage: unknown or empty message");
  }
}

void WorkerConnectReactor::Lost(const std::string& reason, const absl::Status& status) {
  // Gone for everyone at once; the call itself may finish later (a write still in flight).
  deps_.logs->WorkerLost(worker_name_);
  deps_.invokes->WorkerLost(worker_name_);
  deps_.fleet->Detach(worker_name_, reason);
  std::lock_guard<std::mutex> lock(mu_);
  EndLocked(ToGrpcStatus(status));
}

bool WorkerConnectReactor::Enqueue(const v1::ControllerMessage& message) {
  const size_t bytes = message.ByteSizeLong();
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_ || queued_bytes_ + bytes > kMaxQueuedBytes) return false;
  if (writing_) {
    queue_.push_back(message);
    queued_bytes_ += bytes;
    return true;
  }
  out_ = message;
  writing_ = true;
  StartWrite(&out_);
  return true;
}

void WorkerConnectReactor::OnWriteDone(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  writing_ = false;
  if (end_.has_value()) {
    finished_ = true;
    Finish(*end_);
    return;
  }
  if (!ok) {
    // The stream is broken: its read ends too, and that ends the worker's connection.
    closed_ = true;
    queue_.clear();
    queued_bytes_ = 0;
    return;
  }
  if (queue_.empty()) return;
  out_ = std::move(queue_.front());
  queue_.pop_front();
  queued_bytes_ -= std::min(queued_bytes_, out_.ByteSizeLong());
  writing_ = true;
  StartWrite(&out_);
}

void WorkerConnectReactor::EndLocked(const grpc::Status& status) {
  closed_ = true;
  queue_.clear();
  queued_bytes_ = 0;
  if (finished_ || end_.has_value()) return;
  if (writing_) {
    end_ = status;  // OnWriteDone finishes.
    return;
  }
  finished_ = true;
  Finish(status);
}

void WorkerConnectReactor::OnDone() {
  if (channel_ != nullptr) channel_->Detach();
  delete this;
}

}  // namespace gantry::controller
