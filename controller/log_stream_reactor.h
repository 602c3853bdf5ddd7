// ControllerService.StreamLogs on gRPC's callback API: a log being followed parks no thread in
// the controller. The worker's batches reach the reactor through the log relay's sink on the
// worker stream's own thread; each batch's lines go on as they come, and a credit goes back to
// the worker once a batch is written, so at most the relay's window of batches is held here
// however slow the reader. The caller's cancellation reaches the worker at once (OnCancel).
#pragma once

#include <grpcpp/grpcpp.h>

#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "controller/credit_relay.h"
#include "controller/fleet.h"
#include "gantry/v1/controller_service.grpc.pb.h"

namespace gantry::controller {

class LogStreamReactor final : public grpc::ServerWriteReactor<v1::LogEntry> {
 public:
  // Starts streaming what `request` asks for; `refused` (not OK): the call ends with it at once.
  // The reactor deletes itself in OnDone.
  static LogStreamReactor* Start(Fleet* fleet, LogRelay* logs, const v1::ControllerStreamLogsRequest& request,
                                 const absl::Status& refused);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  template <typename Item, typename Consumer>
  friend std::shared_ptr<const typename CreditRelay<Item>::Sink> SinkTo(std::shared_ptr<RelayMailbox<Consumer>>);
  struct Line {
    v1::LogEntry entry;
    bool ends_batch = false;  // Written: the worker may send one more batch.
  };

  explicit LogStreamReactor(LogRelay* logs);

  void OnRelayed(v1::WorkerLogLines batch);
  void OnRelayFailed(const absl::Status& status);
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the call with `status` once what is waiting is written (at once if `now`).
  void EndLocked(const grpc::Status& status, bool now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The worker is done with (the log ended, or it is no longer wanted: then it is told to stop).
  void LeaveWorkerLocked(bool tell_it_to_stop) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  LogRelay* const logs_;
  const std::shared_ptr<RelayMailbox<LogStreamReactor>> mailbox_;

  std::mutex mu_;
  std::shared_ptr<WorkerChannel> worker_ ABSL_GUARDED_BY(mu_);  // Set while the worker streams.
  std::string stream_id_ ABSL_GUARDED_BY(mu_);
  std::deque<Line> waiting_ ABSL_GUARDED_BY(mu_);
  Line in_flight_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> end_ ABSL_GUARDED_BY(mu_);  // Finish once waiting_ is written.
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace gantry::controller
