// InvokeService.Invoke on gRPC's callback API, both ways: the client's call is a server
// reactor and the relay to a controller a client reactor, so an invoke in flight parks no
// thread in the API server. Admission (an API key and the candidates are looked up in
// PostgreSQL) and the choice of each controller run as jobs on a small pool; every reaction
// only moves chunks.
//
// Chunks flow with credit: the relay reads ahead of the client by at most kReadAhead chunks,
// and reads no more until the client has taken some, so a slow client slows the controller
// (and through it the handler) while holding bounded memory here. Chunks waiting when a write
// completes go out with a buffer hint, several to one flush. A controller that refuses before
// the first chunk (UNAVAILABLE, RESOURCE_EXHAUSTED) passes the invoke to the next candidate;
// after the first chunk its status is the client's. The client's deadline travels to the
// controller, and its cancellation cancels the relay at once.
#pragma once

#include <grpcpp/grpcpp.h>

#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "api-server/authenticator.h"
#include "api-server/controller_client.h"
#include "api-server/controller_store.h"
#include "api-server/stream_quota.h"
#include "common/request_ids.h"
#include "common/work_pool.h"
#include "gantry/v1/invoke_service.grpc.pb.h"

namespace gantry::api {

struct InvokeDeps {
  Authenticator* auth;
  StreamQuota* streams;
  ControllerStore* controllers;
  ControllerClient* client;
  WorkPool* jobs;  // Drained (not stopped) at shutdown: a queued job owns its invoke.
  int64_t max_payload_bytes;
  int max_attempts;  // Controllers tried before the first chunk.
};

class InvokeReactor final : public grpc::ServerWriteReactor<v1::InvokeChunk> {
 public:
  // Chunks read from the controller and not yet written to the client, at most.
  static constexpr size_t kReadAhead = 32;

  // Starts the invoke for the call of `context`; the reactor deletes itself once gRPC is done
  // with the call and with its relay, and no job of its own is queued or running.
  static InvokeReactor* Start(const InvokeDeps& deps, grpc::CallbackServerContext* context,
                              const v1::InvokeRequest& request);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // The relay to one controller (one attempt).
  class Upstream final : public grpc::ClientReadReactor<v1::InvokeChunk> {
   public:
    Upstream(InvokeReactor* invoke, ControllerTarget target) : invoke_(invoke), target(std::move(target)) {}
    void OnReadDone(bool ok) override { invoke_->OnRelayed(ok); }
    void OnDone(const grpc::Status& status) override { invoke_->OnRelayDone(status); }

    InvokeReactor* const invoke_;
    const ControllerTarget target;
    grpc::ClientContext context;
    std::shared_ptr<v1::ControllerService::StubInterface> stub;  // Kept for the call's life.
    v1::InvokeChunk incoming;
    int64_t chunks = 0;
  };

  InvokeReactor(const InvokeDeps& deps, grpc::CallbackServerContext* context, const v1::InvokeRequest& request);

  // Jobs on deps_.jobs.
  void Admit();
  void TryNext();
  // Reactions of the current Upstream.
  void OnRelayed(bool ok);
  void OnRelayDone(const grpc::Status& status);

  // Queues TryNext (the invoke ends if the pool refuses it).
  void QueueTryNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Finishes the call with `status` now, or once the write in flight completes; cancels the
  // relay if one is running.
  void EndLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether everything that refers to this invoke has let go of it.
  bool UnreferencedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void JobDone();

  const InvokeDeps deps_;
  const v1::InvokeRequest request_;  // A copy: a relay may outlive the call's own.
  const CallCredentials credentials_;
  const std::optional<RequestIds> ids_;
  const std::chrono::system_clock::time_point deadline_;
  const absl::Time started_;

  std::mutex mu_;
  std::optional<StreamQuota::Lease> lease_ ABSL_GUARDED_BY(mu_);
  std::vector<ControllerTarget> candidates_ ABSL_GUARDED_BY(mu_);
  size_t next_candidate_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::Status last_refusal_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Upstream>> upstreams_ ABSL_GUARDED_BY(mu_);  // The last is current.
  bool relaying_ ABSL_GUARDED_BY(mu_) = false;      // The current Upstream's call is not done.
  bool reading_ ABSL_GUARDED_BY(mu_) = false;       // A read of it is outstanding.
  bool read_all_ ABSL_GUARDED_BY(mu_) = false;      // Its stream has ended.
  std::deque<v1::InvokeChunk> waiting_ ABSL_GUARDED_BY(mu_);  // Read, not yet written.
  v1::InvokeChunk in_flight_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> relay_status_ ABSL_GUARDED_BY(mu_);  // The client's, once waiting_ is written.
  std::optional<grpc::Status> end_ ABSL_GUARDED_BY(mu_);  // Finish once the write in flight is done.
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool job_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace gantry::api
