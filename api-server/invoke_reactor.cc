#include "api-server/invoke_reactor.h"

#include <spdlog/spdlog.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/invoke_request.h"
#include "common/metrics.h"
#include "common/status.h"

namespace gantry::api {

InvokeReactor* InvokeReactor::Start(const InvokeDeps& deps, grpc::CallbackServerContext* context,
                                    const v1::InvokeRequest& request) {
  auto* invoke = new InvokeReactor(deps, context, request);
  invoke->BeginAdmission();
  return invoke;
}

InvokeReactor::InvokeReactor(const InvokeDeps& deps, grpc::CallbackServerContext* context,
                             const v1::InvokeRequest& request)
    : RelayedStream(deps.jobs, deps.client, CopyCurrentRequestIds(), context->deadline()),
      deps_(deps),
      request_(request),
      credentials_(CallCredentials::Of(*context)),
      started_(absl::Now()) {}

void InvokeReactor::BeginAdmission() {
  // A certificate, and the candidates asked for within the second: nothing to wait for, so the
  // invoke is admitted and relayed here, without the hop to a job (a hand-off between threads
  // that was a sixth of an invoke's time at concurrency 1). Otherwise a job asks PostgreSQL.
  std::optional<absl::StatusOr<Caller>> caller = deps_.auth->AuthenticateClientAtHand(credentials_);
  std::optional<absl::StatusOr<std::vector<ControllerTarget>>> candidates;
  if (caller.has_value()) {
    auto range = ValidateInvokeRequest(request_, deps_.max_payload_bytes);
    if (!range.ok()) {
      candidates.emplace(range.status());
    } else if (auto at_hand = deps_.candidates->CandidatesAtHand(
                   request_.capability(), [&](const std::string& v) { return range->Matches(absl::string_view(v)); },
                   deps_.max_attempts)) {
      candidates.emplace(*std::move(at_hand));
    }
  }
  std::unique_lock<std::mutex> lock(mu_);
  if (!candidates.has_value()) {
    QueueJobLocked([this] { Admit(); }, "invokes");
    return;
  }
  BeginJobHereLocked();
  lock.unlock();
  Admitted(*std::move(caller), *std::move(candidates));
}

void InvokeReactor::Admit() {
  MaybeRequestIdScope scope(ids());
  if (!StillWanted()) return;
  absl::StatusOr<Caller> caller = deps_.auth->AuthenticateClient(credentials_);
  absl::StatusOr<std::vector<ControllerTarget>> candidates = std::vector<ControllerTarget>{};
  if (caller.ok()) {
    auto range = ValidateInvokeRequest(request_, deps_.max_payload_bytes);
    candidates = range.ok() ? deps_.candidates->Candidates(
                                  request_.capability(),
                                  [&](const std::string& v) { return range->Matches(absl::string_view(v)); },
                                  deps_.max_attempts)
                            : absl::StatusOr<std::vector<ControllerTarget>>(range.status());
  }
  Admitted(std::move(caller), std::move(candidates));
}

void InvokeReactor::Admitted(absl::StatusOr<Caller> caller,
                             absl::StatusOr<std::vector<ControllerTarget>> candidates) {
  absl::StatusOr<StreamQuota::Lease> lease =
      caller.ok() ? deps_.streams->Acquire(caller->principal) : absl::StatusOr<StreamQuota::Lease>(caller.status());
  absl::Status admitted = lease.ok() ? candidates.status() : lease.status();
  if (admitted.ok() && candidates->empty()) {
    admitted = absl::NotFoundError(absl::StrCat(
        "capability: no healthy controller serves ", request_.capability(),
        request_.version().empty() ? "" : absl::StrCat(" at a version matching \"", request_.version(), "\"")));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (lease.ok()) lease_.emplace(*std::move(lease));
    if (admitted.ok()) candidates_ = *std::move(candidates);
    if (!admitted.ok()) EndLocked(ToGrpcStatus(admitted));
  }
  TryNext();  // The first controller, on this job.
}

void InvokeReactor::TryNext() {
  MaybeRequestIdScope scope(ids());
  ControllerTarget target;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ended()) {
      // Refused at admission, or the client went.
    } else if (next_candidate_ >= candidates_.size()) {
      EndLocked(last_refusal_);
    } else {
      target = candidates_[next_candidate_++];
    }
  }
  if (target.id.empty()) {
    JobDone();
    return;
  }
  deps_.candidates->Picked(request_.capability(), target.id);  // Spreads this replica's invokes.
  Relay(target, [this](v1::ControllerService::StubInterface* stub, grpc::ClientContext* context,
                       grpc::ClientReadReactor<v1::InvokeChunk>* reactor) {
    stub->async()->Invoke(context, &request_, reactor);
  });
}

void InvokeReactor::OnItemLocked(const ControllerTarget& target, int64_t index, v1::InvokeChunk& chunk) {
  if (index == 0) {
    Metrics::Global().Observe("gantry_invoke_time_to_first_chunk_seconds",
                              "Time from an invoke request to its first chunk, by capability",
                              {{"capability", request_.capability()}}, absl::ToDoubleSeconds(absl::Now() - started_));
  }
  chunk.set_controller_id(target.id);
}

void InvokeReactor::RefusedLocked(const ControllerTarget& target, const grpc::Status& status) {
  MaybeRequestIdScope scope(ids());  // A relay's reaction: the call's ids are not this thread's.
  spdlog::info("invoke of {} refused by controller {}: {}", request_.capability(), target.name, status.error_message());
  last_refusal_ = status;
  QueueJobLocked([this] { TryNext(); }, "invokes");
}

}  // namespace gantry::api
