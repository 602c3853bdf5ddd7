// Log streams from workers to ControllerService.StreamLogs callers. Each stream holds at most
// `window` batches: the worker may only send as many as it has credits, and the caller returns
// one credit per batch it has written to its client, so memory per stream is bounded by
// window x 64 KiB however slow the reader is. A worker that sends beyond its credit has its
// stream closed with RESOURCE_EXHAUSTED.
//
// Thread-safe: batches arrive on Connect handler threads, callers wait on theirs.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gantry/v1/worker_service.pb.h"

namespace gantry::controller {

class LogRelay {
 public:
  explicit LogRelay(int window = 8) : window_(window) {}

  int window() const { return window_; }

  // A new stream from `worker_name`; returns its id.
  std::string Open(const std::string& worker_name);
  void Close(const std::string& stream_id);

  // A batch from a worker. Batches for unknown (already closed) streams are dropped.
  void Deliver(const std::string& worker_name, const v1::WorkerLogLines& batch);
  // The worker's connection broke: its streams end with UNAVAILABLE.
  void WorkerLost(const std::string& worker_name);

  // The next batch, or nullopt after `timeout`. Once the stream failed (worker lost, credit
  // violated), returns that status instead.
  absl::StatusOr<std::optional<v1::WorkerLogLines>> Next(const std::string& stream_id,
                                                         absl::Duration timeout);

  size_t open_streams();

 private:
  struct Stream {
    std::string worker;
    std::deque<v1::WorkerLogLines> batches;
    absl::Status failure;
  };

  const int window_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, Stream> streams_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gantry::controller
