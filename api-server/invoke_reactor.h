// InvokeService.Invoke on gRPC's callback API both ways (RelayedStream): an invoke in flight
// parks no thread in the API server. Admission runs in the call's first reaction where nothing
// must be asked of PostgreSQL (a certificate, candidates asked for within the second), else as
// a job on a small pool (an API key, candidates to ask for), as does the choice of each next
// controller. A controller that
// refuses before the first chunk (UNAVAILABLE, RESOURCE_EXHAUSTED) passes the invoke to the next
// candidate; after the first chunk its status is the client's. The client's deadline travels
// to the controller, and its cancellation cancels the relay at once.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "api-server/authenticator.h"
#include "api-server/controller_client.h"
#include "api-server/controller_store.h"
#include "api-server/invoke_candidate_cache.h"
#include "api-server/relayed_stream.h"
#include "api-server/stream_quota.h"
#include "common/work_pool.h"
#include "gantry/v1/invoke_service.grpc.pb.h"

namespace gantry::api {

struct InvokeDeps {
  Authenticator* auth;
  StreamQuota* streams;
  InvokeCandidateCache* candidates;
  ControllerClient* client;
  WorkPool* jobs;  // Drained (not stopped) at shutdown: a queued job owns its invoke.
  int64_t max_payload_bytes;
  int max_attempts;  // Controllers tried before the first chunk.
};

class InvokeReactor final : public RelayedStream<v1::InvokeChunk> {
 public:
  // Starts the invoke for the call of `context` (see RelayedStream for its lifetime).
  static InvokeReactor* Start(const InvokeDeps& deps, grpc::CallbackServerContext* context,
                              const v1::InvokeRequest& request);

 private:
  InvokeReactor(const InvokeDeps& deps, grpc::CallbackServerContext* context, const v1::InvokeRequest& request);

  // Admits the call here if nothing must be waited for, else queues Admit.
  void BeginAdmission();
  // Jobs (Admitted and TryNext also run from BeginAdmission, as its job).
  void Admit();
  void Admitted(absl::StatusOr<Caller> caller, absl::StatusOr<std::vector<ControllerTarget>> candidates);
  void TryNext();

  void OnItemLocked(const ControllerTarget& target, int64_t index, v1::InvokeChunk& chunk) override;
  void RefusedLocked(const ControllerTarget& target, const grpc::Status& status) override;
  bool IsLastItem(const v1::InvokeChunk& chunk) const override { return chunk.last(); }

  const InvokeDeps deps_;
  const v1::InvokeRequest request_;  // A copy: a relay may outlive the call's own.
  const CallCredentials credentials_;
  const absl::Time started_;

  std::optional<StreamQuota::Lease> lease_ ABSL_GUARDED_BY(mu_);
  std::vector<ControllerTarget> candidates_ ABSL_GUARDED_BY(mu_);
  size_t next_candidate_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::Status last_refusal_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gantry::api
