// The controller's handle on one worker's Connect stream. Send never blocks: messages go to a
// queue that a writer thread of this stream drains. A worker that stops reading (frozen,
// partitioned) fills its flow-control window, and a gRPC write to it then blocks until the
// transport gives up on it (keepalive: up to 15 s); cancelling the call does not end such a
// write. Only this stream's writer waits on it: callers of Send (placements, invokes, stops),
// the liveness sweep that closes silent workers, and every other worker's stream go on.
#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/sync_stream.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "controller/fleet.h"
#include "gantry/v1/worker_service.pb.h"

namespace gantry::controller {

class WorkerStreamChannel : public WorkerChannel {
 public:
  using Stream = grpc::ServerReaderWriter<v1::ControllerMessage, v1::WorkerMessage>;
  // Messages queued for a worker that is not reading them, at most: beyond it Send refuses
  // (the caller treats the worker as gone) rather than buffer without bound.
  static constexpr size_t kMaxQueuedBytes = 64 << 20;

  WorkerStreamChannel(grpc::ServerContext* ctx, Stream* stream);
  ~WorkerStreamChannel() override;

  // Queues `message`; false once the stream is closed or its queue is full.
  bool Send(const v1::ControllerMessage& message) override;
  // Cancels the call: the handler's reads end, and with them the stream.
  void Close() override;
  // Called before the handler returns; afterwards the stream and context are gone. Waits for
  // a write still in flight, so call it after the worker has been detached.
  void Invalidate();

 private:
  void WriteLoop();

  grpc::ServerContext* const ctx_;
  Stream* const stream_;  // Written by the writer thread only.
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<v1::ControllerMessage> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool context_valid_ ABSL_GUARDED_BY(mu_) = true;
  std::thread writer_;
};

}  // namespace gantry::controller
