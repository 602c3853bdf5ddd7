#include "api-server/invoke_reactor.h"

#include <spdlog/spdlog.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/invoke_request.h"
#include "common/metrics.h"
#include "common/status.h"

namespace gantry::api {
namespace {

const grpc::Status kBusy(grpc::StatusCode::UNAVAILABLE,
                         "this API server has too many invokes waiting to be routed; retry, here or on another replica");

// A controller that says this before its first chunk did not take the invoke: another may.
bool Refused(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

}  // namespace

InvokeReactor* InvokeReactor::Start(const InvokeDeps& deps, grpc::CallbackServerContext* context,
                                    const v1::InvokeRequest& request) {
  auto* invoke = new InvokeReactor(deps, context, request);
  std::lock_guard<std::mutex> lock(invoke->mu_);
  invoke->job_ = true;
  if (!deps.jobs->TrySubmit([invoke] { invoke->Admit(); })) {
    invoke->job_ = false;
    invoke->EndLocked(kBusy);
  }
  return invoke;
}

InvokeReactor::InvokeReactor(const InvokeDeps& deps, grpc::CallbackServerContext* context,
                             const v1::InvokeRequest& request)
    : deps_(deps),
      request_(request),
      credentials_(CallCredentials::Of(*context)),
      ids_(CopyCurrentRequestIds()),
      deadline_(context->deadline()),
      started_(absl::Now()) {}

void InvokeReactor::Admit() {
  MaybeRequestIdScope scope(ids_);
  bool cancelled = false;  // Before its turn came.
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled = finished_ || end_.has_value();
  }
  if (cancelled) {
    JobDone();
    return;
  }
  absl::StatusOr<Caller> caller = deps_.auth->AuthenticateClient(credentials_);
  absl::Status admitted = caller.status();
  std::optional<StreamQuota::Lease> lease;
  if (admitted.ok()) {
    auto acquired = deps_.streams->Acquire(caller->principal);
    admitted = acquired.status();
    if (acquired.ok()) lease.emplace(std::move(*acquired));
  }
  absl::StatusOr<std::vector<ControllerTarget>> candidates = std::vector<ControllerTarget>();
  if (!admitted.ok()) {
    candidates = admitted;
  } else {
    auto range = ValidateInvokeRequest(request_, deps_.max_payload_bytes);
    candidates = range.ok() ? deps_.controllers->InvokeCandidates(
                                  request_.capability(),
                                  [&](const std::string& v) { return range->Matches(absl::string_view(v)); },
                                  deps_.max_attempts)
                            : absl::StatusOr<std::vector<ControllerTarget>>(range.status());
    if (candidates.ok() && candidates->empty()) {
      candidates = absl::NotFoundError(absl::StrCat(
          "capability: no healthy controller serves ", request_.capability(),
          request_.version().empty() ? "" : absl::StrCat(" at a version matching \"", request_.version(), "\"")));
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (lease.has_value()) lease_.emplace(std::move(*lease));
    if (!candidates.ok()) {
      EndLocked(ToGrpcStatus(candidates.status()));
    } else {
      candidates_ = *std::move(candidates);
    }
  }
  if (candidates.ok()) {
    TryNext();  // The first controller, on this job.
    return;
  }
  JobDone();
}

void InvokeReactor::TryNext() {
  MaybeRequestIdScope scope(ids_);
  ControllerTarget target;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_ || end_.has_value()) {
      // Ended meanwhile (the client went).
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
  (void)deps_.controllers->NoteSelected(target.id);  // Spreads invokes; a failure to note changes nothing.
  auto upstream = std::make_unique<Upstream>(this, target);
  upstream->stub = deps_.client->AsyncStub(target.endpoint);
  upstream->context.set_deadline(deadline_);
  AddRequestId(&upstream->context);
  bool unreferenced = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = false;
    if (finished_ || end_.has_value()) {
      unreferenced = UnreferencedLocked();  // The client went while the controller was chosen.
    } else if (upstream->stub == nullptr) {
      last_refusal_ = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                   absl::StrCat("controller at ", target.endpoint, ": no connection to it"));
      QueueTryNextLocked();
    } else {
      Upstream* relay = upstream.get();
      upstreams_.push_back(std::move(upstream));
      relaying_ = true;
      read_all_ = false;
      reading_ = true;
      relay->stub->async()->Invoke(&relay->context, &request_, relay);
      relay->StartRead(&relay->incoming);
      relay->StartCall();
    }
  }
  if (unreferenced) delete this;
}

void InvokeReactor::QueueTryNextLocked() {
  job_ = true;
  if (!deps_.jobs->TrySubmit([this] { TryNext(); })) {
    job_ = false;
    EndLocked(kBusy);
  }
}

void InvokeReactor::OnRelayed(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  reading_ = false;
  if (!ok) {
    read_all_ = true;  // The controller's stream ended: OnRelayDone says how.
    return;
  }
  Upstream& relay = *upstreams_.back();
  if (relay.chunks++ == 0) {
    Metrics::Global().Observe("gantry_invoke_time_to_first_chunk_seconds",
                              "Time from an invoke request to its first chunk, by capability",
                              {{"capability", request_.capability()}}, absl::ToDoubleSeconds(absl::Now() - started_));
  }
  if (finished_ || end_.has_value()) return;  // Nobody to write to: the relay is being cancelled.
  relay.incoming.set_controller_id(relay.target.id);
  waiting_.push_back(std::move(relay.incoming));
  relay.incoming.Clear();
  if (waiting_.size() < kReadAhead) {
    reading_ = true;
    relay.StartRead(&relay.incoming);
  }
  if (!writing_) WriteNextLocked();
}

void InvokeReactor::WriteNextLocked() {
  in_flight_ = std::move(waiting_.front());
  waiting_.pop_front();
  writing_ = true;
  grpc::WriteOptions options;
  // More is waiting: its write follows at once, and one flush takes both.
  if (!waiting_.empty()) options.set_buffer_hint();
  StartWrite(&in_flight_, options);
  // Room again: the relay may read on.
  if (relaying_ && !reading_ && !read_all_ && waiting_.size() < kReadAhead) {
    reading_ = true;
    upstreams_.back()->StartRead(&upstreams_.back()->incoming);
  }
}

void InvokeReactor::OnWriteDone(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  writing_ = false;
  if (!ok && !end_.has_value()) EndLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
  if (end_.has_value()) {
    finished_ = true;
    Finish(*end_);
    return;
  }
  if (!waiting_.empty()) {
    WriteNextLocked();
  } else if (relay_status_.has_value()) {
    EndLocked(*relay_status_);
  }
}

void InvokeReactor::OnRelayDone(const grpc::Status& status) {
  bool unreferenced = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    relaying_ = false;
    Upstream& relay = *upstreams_.back();
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE && relay.chunks == 0) {
      deps_.client->Unavailable(relay.target.endpoint);
    }
    if (finished_ || end_.has_value()) {
      unreferenced = UnreferencedLocked();
    } else if (relay.chunks == 0 && Refused(status)) {
      spdlog::info("invoke of {} refused by controller {}: {}", request_.capability(), relay.target.name,
                   status.error_message());
      last_refusal_ = status.error_code() == grpc::StatusCode::UNAVAILABLE
                          ? grpc::Status(status.error_code(), absl::StrCat("controller at ", relay.target.endpoint,
                                                                           ": ", status.error_message()))
                          : status;
      QueueTryNextLocked();
    } else {
      relay_status_ = status;
      if (!writing_ && waiting_.empty()) EndLocked(status);
    }
  }
  if (unreferenced) delete this;
}

void InvokeReactor::EndLocked(const grpc::Status& status) {
  if (finished_ || end_.has_value()) return;
  // Whatever the controller still sends is nobody's now; its handler stops.
  if (relaying_) upstreams_.back()->context.TryCancel();
  if (writing_) {
    end_ = status;  // OnWriteDone finishes.
    return;
  }
  finished_ = true;
  Finish(status);
}

void InvokeReactor::OnCancel() {
  std::lock_guard<std::mutex> lock(mu_);
  EndLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the invoke was cancelled"));
}

void InvokeReactor::OnDone() {
  bool unreferenced = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    unreferenced = UnreferencedLocked();
  }
  if (unreferenced) delete this;
}

bool InvokeReactor::UnreferencedLocked() const { return done_ && !relaying_ && !job_; }

void InvokeReactor::JobDone() {
  bool unreferenced = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = false;
    unreferenced = UnreferencedLocked();
  }
  if (unreferenced) delete this;
}

}  // namespace gantry::api
