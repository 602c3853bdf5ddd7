// WorkerService.Connect on gRPC's callback API: a connected worker is this object, never a
// thread. The hello comes first and attaches the worker to the Fleet; then each message
// (heartbeat, session event, logs, metrics, invoke output) is handed on as it is read, one read
// at a time so that a worker's messages are taken in order. Nothing it hands them to waits on
// the network (the Fleet, the credit relays, the API link's queue).
//
// The Fleet writes to the worker through a WorkerStreamChannel: messages queue here (at most
// kMaxQueuedBytes) and are written one at a time. A worker that stops reading (frozen,
// partitioned) fills its flow-control window, and its write then waits until the transport
// gives up on it (keepalive: up to 15 s) or the call is cancelled; what waits is this queue,
// not a thread, and no other worker notices.
//
// The stream's end (the worker went, missed heartbeats closed it, or it sent something
// malformed) detaches the worker from the Fleet and the relays at once; the call finishes once
// no write is in flight. The reactor deletes itself in OnDone.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "controller/credit_relay.h"
#include "controller/fleet.h"
#include "gantry/v1/worker_service.grpc.pb.h"

namespace gantry::controller {

class WorkerStreamChannel;

struct WorkerConnectDeps {
  Fleet* fleet;
  LogRelay* logs;
  InvokeRelay* invokes;
};

class WorkerConnectReactor final : public grpc::ServerBidiReactor<v1::WorkerMessage, v1::ControllerMessage> {
 public:
  // Messages queued for a worker that is not reading them, at most: beyond it a send is
  // refused (the caller treats the worker as gone) rather than buffered without bound.
  static constexpr size_t kMaxQueuedBytes = 64 << 20;

  // Serves the call of `context` (refused at once without a worker certificate).
  static WorkerConnectReactor* Start(const WorkerConnectDeps& deps, grpc::CallbackServerContext* context);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override;

  // For WorkerStreamChannel, while the reactor lives.
  bool Enqueue(const v1::ControllerMessage& message);
  void Cancel() { context_->TryCancel(); }

 private:
  WorkerConnectReactor(const WorkerConnectDeps& deps, grpc::CallbackServerContext* context);

  void TakeHello();
  // Hands `in_` on; an error ends the stream.
  absl::Status Dispatch();
  // The stream is over for the worker: detached everywhere, then finished with `status`.
  void Lost(const std::string& reason, const absl::Status& status);
  // No more writes; finishes now, or once the write in flight is done.
  void EndLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const WorkerConnectDeps deps_;
  grpc::CallbackServerContext* const context_;
  std::string worker_name_;  // From its certificate.

  // The read side's own: reads are one at a time.
  v1::WorkerMessage in_;
  bool attached_ = false;
  std::shared_ptr<WorkerStreamChannel> channel_;

  std::mutex mu_;
  std::deque<v1::ControllerMessage> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  v1::ControllerMessage out_ ABSL_GUARDED_BY(mu_);  // The write in flight.
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;  // No more writes.
  std::optional<grpc::Status> end_ ABSL_GUARDED_BY(mu_);  // Finish once the write in flight is done.
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace gantry::controller
