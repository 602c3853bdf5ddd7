// ControllerService.Invoke on gRPC's callback API: an invoke in flight parks no thread in the
// controller. It chooses a worker (InvokeRouter), sends it the request on its stream, and the
// worker's output is handed to this reactor by the InvokeRelay on the worker stream's own
// thread (a sink: nobody waits for it); each chunk goes on to the API server as it comes, and
// credit goes back to the worker for what is written (a quarter of the window at a time), so
// at most the relay's window (chunks, and bytes) is held here however slow the caller. A worker that fails or is busy before the first chunk
// gives the request to another worker, once. The caller's deadline travels to the worker, and
// its cancellation reaches the handler at once (OnCancel, not a polling loop).
#pragma once

#include <grpcpp/grpcpp.h>

#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/semver.h"
#include "controller/credit_relay.h"
#include "controller/fleet.h"
#include "controller/invoke_router.h"
#include "gantry/v1/controller_service.grpc.pb.h"

namespace gantry::controller {

struct InvokeDeps {
  Fleet* fleet;
  InvokeRelay* invokes;
  InvokeRouter* router;
  int64_t max_invoke_payload_bytes;
};

class InvokeReactor final : public grpc::ServerWriteReactor<v1::InvokeChunk> {
 public:
  // Starts the invoke for the call of `context`; the reactor deletes itself in OnDone.
  static InvokeReactor* Start(const InvokeDeps& deps, grpc::CallbackServerContext* context,
                              const v1::InvokeRequest* request);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  template <typename Item, typename Consumer>
  friend std::shared_ptr<const typename CreditRelay<Item>::Sink> SinkTo(std::shared_ptr<RelayMailbox<Consumer>>);

  InvokeReactor(const InvokeDeps& deps, grpc::CallbackServerContext* context, const v1::InvokeRequest* request,
                SemVerRange range);

  // From the relay (a worker stream's thread).
  void OnRelayed(v1::WorkerInvokeOutput output);
  void OnRelayFailed(const absl::Status& status);

  // The worker to try next (InvokeRouter: affinity, then the least busy), none tried before.
  std::optional<InvokeTarget> PickWorkerLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends the request to `target`; UNAVAILABLE if its stream is gone.
  grpc::Status StartOnLocked(const InvokeTarget& target) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The current worker is done with (its output complete, failed, or no longer wanted: then it
  // is told to stop).
  void LeaveWorkerLocked(bool tell_it_to_stop) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A worker that failed or was busy: the next one, if this was the first and nothing has
  // reached the caller; else the invoke ends with `status`.
  void RetryOrEndLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Grants the current worker what has been written since the last grant, once it is worth a
  // message.
  void ReturnCreditLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EndLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the call with `status`, and `last` written with it if given (it must outlive the call).
  void FinishLocked(const grpc::Status& status, const v1::InvokeChunk* last = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const InvokeDeps deps_;
  const v1::InvokeRequest* const request_;  // gRPC's, valid until OnDone.
  const SemVerRange range_;
  const std::string affinity_key_;
  const std::chrono::system_clock::time_point deadline_;
  const absl::Time started_;
  const std::shared_ptr<RelayMailbox<InvokeReactor>> mailbox_;

  std::mutex mu_;
  std::set<std::string> tried_ ABSL_GUARDED_BY(mu_);
  std::optional<InvokeTarget> worker_ ABSL_GUARDED_BY(mu_);  // Set while a worker serves it.
  std::string stream_id_ ABSL_GUARDED_BY(mu_);
  bool served_ ABSL_GUARDED_BY(mu_) = false;  // Some worker here serves the capability.
  int64_t received_ ABSL_GUARDED_BY(mu_) = 0;  // Chunks from the current worker.
  int64_t sent_ ABSL_GUARDED_BY(mu_) = 0;      // Chunks written to the caller.
  int owed_chunks_ ABSL_GUARDED_BY(mu_) = 0;   // Written, and not yet credited to the worker.
  int64_t owed_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time first_chunk_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::InvokeChunk> waiting_ ABSL_GUARDED_BY(mu_);
  v1::InvokeChunk in_flight_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> worker_status_ ABSL_GUARDED_BY(mu_);  // The caller's, once waiting_ is written.
  std::optional<grpc::Status> end_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace gantry::controller
