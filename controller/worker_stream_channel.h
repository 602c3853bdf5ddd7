// The Fleet's handle on one worker's Connect stream (WorkerConnectReactor), which may end
// while the Fleet still holds the handle: from then on Send refuses and Close does nothing.
// Send never blocks: the message is queued, bounded, and written when the worker takes it.
#pragma once

#include <mutex>

#include "absl/base/thread_annotations.h"
#include "controller/fleet.h"
#include "gantry/v1/worker_service.pb.h"

namespace gantry::controller {

class WorkerConnectReactor;

class WorkerStreamChannel final : public WorkerChannel {
 public:
  explicit WorkerStreamChannel(WorkerConnectReactor* reactor) : reactor_(reactor) {}

  // Queues `message`; false once the stream is over or its queue is full.
  bool Send(const v1::ControllerMessage& message) override;
  // Cancels the call: its reads end, and with them the stream.
  void Close() override;
  // The reactor is going: called from its OnDone, after which nothing reaches it.
  void Detach();

 private:
  std::mutex mu_;  // Before the reactor's own.
  WorkerConnectReactor* reactor_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gantry::controller
