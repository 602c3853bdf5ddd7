#include "controller/invoke_reactor.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/identity.h"
#include "common/invoke_request.h"
#include "common/metrics.h"
#include "common/proto_time.h"
#include "common/status.h"

namespace gantry::controller {
namespace {

constexpr char kInFlight[] = "gantry_invoke_in_flight";
constexpr char kInFlightHelp[] = "Invoke requests being served";
constexpr int kAttempts = 2;  // Workers tried before the first chunk.

std::string AffinityKey(const v1::InvokeRequest& request) {
  auto affinity = request.metadata().find("session");
  return affinity == request.metadata().end() ? "" : affinity->second;
}

}  // namespace

InvokeReactor* InvokeReactor::Start(const InvokeDeps& deps, grpc::CallbackServerContext* context,
                                    const v1::InvokeRequest* request) {
  absl::Status refused = RequirePeerRole(context->auth_context().get(), Role::kApiServer, "ControllerService").status();
  absl::StatusOr<SemVerRange> range = refused.ok() ? ValidateInvokeRequest(*request, deps.max_invoke_payload_bytes)
                                                   : absl::StatusOr<SemVerRange>(refused);
  auto* invoke = new InvokeReactor(deps, context, request, range.ok() ? *range : SemVerRange());
  std::lock_guard<std::mutex> lock(invoke->mu_);
  if (!range.ok()) {
    invoke->EndLocked(ToGrpcStatus(range.status()));
    return invoke;
  }
  std::optional<InvokeTarget> target = invoke->PickWorkerLocked();
  if (!target.has_value()) {
    invoke->EndLocked(ToGrpcStatus(absl::NotFoundError(absl::StrCat(
        "capability: no online worker on this node serves ", request->capability(),
        request->version().empty() ? "" : absl::StrCat(" at version ", request->version())))));
    return invoke;
  }
  grpc::Status started = invoke->StartOnLocked(*target);
  if (!started.ok()) invoke->RetryOrEndLocked(started);
  return invoke;
}

InvokeReactor::InvokeReactor(const InvokeDeps& deps, grpc::CallbackServerContext* context,
                             const v1::InvokeRequest* request, SemVerRange range)
    : deps_(deps),
      request_(request),
      range_(std::move(range)),
      affinity_key_(AffinityKey(*request)),
      deadline_(context->deadline()),
      started_(absl::Now()),
      mailbox_(std::make_shared<RelayMailbox<InvokeReactor>>()) {
  mailbox_->consumer = this;
}

std::optional<InvokeTarget> InvokeReactor::PickWorkerLocked() {
  auto candidates = deps_.fleet->WorkersWithCapability(
      request_->capability(), [&](const std::string& version) { return range_.Matches(absl::string_view(version)); });
  return deps_.router->Pick(std::move(candidates), affinity_key_, tried_);
}

grpc::Status InvokeReactor::StartOnLocked(const InvokeTarget& target) {
  served_ = true;
  tried_.insert(target.worker_name);
  deps_.router->Started(target.worker_name);
  Metrics::Global().GaugeAdd(kInFlight, kInFlightHelp, {{"capability", request_->capability()}}, 1);
  worker_ = target;
  received_ = 0;
  owed_chunks_ = 0;
  owed_bytes_ = 0;
  stream_id_ = deps_.invokes->OpenWithSink(target.worker_name, SinkTo<v1::WorkerInvokeOutput>(mailbox_));
  v1::ControllerMessage start;
  auto* cmd = start.mutable_invoke();
  cmd->set_invoke_id(stream_id_);
  *cmd->mutable_request() = *request_;
  cmd->set_credit(deps_.invokes->window());
  cmd->set_credit_bytes(deps_.invokes->window_bytes());
  // The caller's deadline travels down; the worker stops the handler when it passes.
  if (deadline_ != std::chrono::system_clock::time_point::max()) {
    ToProto(absl::FromChrono(deadline_), cmd->mutable_deadline());
  }
  // Send only queues (WorkerStreamChannel): nothing waits for the worker here.
  if (target.channel->Send(start)) return grpc::Status::OK;
  LeaveWorkerLocked(/*tell_it_to_stop=*/false);
  return ToGrpcStatus(absl::UnavailableError(absl::StrCat("worker ", target.worker_name, " disconnected")));
}

void InvokeReactor::LeaveWorkerLocked(bool tell_it_to_stop) {
  if (!worker_.has_value()) return;
  if (tell_it_to_stop) {
    v1::ControllerMessage cancel;
    cancel.mutable_cancel_invoke()->set_invoke_id(stream_id_);
    worker_->channel->Send(cancel);
  }
  deps_.invokes->Close(stream_id_);
  deps_.router->Ended(worker_->worker_name);
  Metrics::Global().GaugeAdd(kInFlight, kInFlightHelp, {{"capability", request_->capability()}}, -1);
  worker_.reset();
}

void InvokeReactor::RetryOrEndLocked(const grpc::Status& status) {
  // Only while nothing has reached the caller, and once.
  const bool may_retry = received_ == 0 && waiting_.empty() && !writing_ && sent_ == 0 &&
                         static_cast<int>(tried_.size()) < kAttempts;
  std::optional<InvokeTarget> next = may_retry ? PickWorkerLocked() : std::nullopt;
  // No other worker: the caller hears this one's reason.
  if (!next.has_value()) {
    EndLocked(status);
    return;
  }
  grpc::Status started = StartOnLocked(*next);
  if (!started.ok()) EndLocked(started);
}

void InvokeReactor::OnRelayed(v1::WorkerInvokeOutput output) {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_ || end_.has_value() || !worker_.has_value() || output.invoke_id() != stream_id_) return;
  if (output.error_code() != 0) {
    grpc::Status status(static_cast<grpc::StatusCode>(output.error_code()), output.error_message());
    LeaveWorkerLocked(/*tell_it_to_stop=*/false);
    if (received_ == 0 && output.error_code() == static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED)) {
      RetryOrEndLocked(status);  // Busy: another worker may take it.
    } else if (waiting_.empty() && !writing_) {
      EndLocked(status);
    } else {
      worker_status_ = status;
    }
    return;
  }
  v1::InvokeChunk chunk = std::move(*output.mutable_chunk());
  if (received_++ == 0) chunk.set_worker_id(worker_->worker_id);
  const bool last = chunk.last();
  if (last && !chunk.data().empty()) {
    // A worker's last chunk and its end, sent as one: the caller gets them as two, as always
    // (the data, then an empty last chunk with the status).
    v1::InvokeChunk end;
    end.set_last(true);
    end.set_sequence(chunk.sequence() + 1);
    chunk.set_last(false);
    waiting_.push_back(std::move(chunk));
    waiting_.push_back(std::move(end));
  } else {
    waiting_.push_back(std::move(chunk));
  }
  if (last) {
    LeaveWorkerLocked(/*tell_it_to_stop=*/false);
    worker_status_ = grpc::Status::OK;
  }
  if (!writing_) WriteNextLocked();
}

void InvokeReactor::OnRelayFailed(const absl::Status& failure) {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_ || end_.has_value() || !worker_.has_value()) return;
  const std::string worker = worker_->worker_name;
  LeaveWorkerLocked(/*tell_it_to_stop=*/false);
  if (received_ == 0) {
    RetryOrEndLocked(ToGrpcStatus(failure));
    return;
  }
  grpc::Status status = ToGrpcStatus(absl::UnavailableError(
      absl::StrCat("worker ", worker, " failed after ", received_, " chunk(s); the output is incomplete (",
                   failure.message(), ")")));
  if (waiting_.empty() && !writing_) {
    EndLocked(status);
  } else {
    worker_status_ = status;
  }
}

void InvokeReactor::WriteNextLocked() {
  in_flight_ = std::move(waiting_.front());
  waiting_.pop_front();
  if (in_flight_.last() && worker_status_.has_value() && worker_status_->ok()) {
    // The end: the last chunk goes out with the status, in one flush, with no reaction between.
    if (sent_++ == 0) first_chunk_ = absl::Now();
    FinishLocked(grpc::Status::OK, &in_flight_);
    return;
  }
  writing_ = true;
  // No buffer hint: a hinted write completes only once something else flushes the transport,
  // and the next write waits for that completion (one write at a time), so a burst's last
  // chunks would wait for unrelated traffic (RELIABILITY.md).
  StartWrite(&in_flight_, grpc::WriteOptions());
}

void InvokeReactor::OnWriteDone(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  writing_ = false;
  // (Nothing is being written now: this finishes at once, unless an end was already waiting.)
  if (!ok) EndLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the caller went away"));
  if (end_.has_value() && !finished_) FinishLocked(*end_);
  if (finished_) return;  // Never a write or a credit after Finish.
  if (sent_++ == 0) first_chunk_ = absl::Now();
  // Written on: the worker may send as much more.
  if (worker_.has_value()) {
    ++owed_chunks_;
    owed_bytes_ += static_cast<int64_t>(in_flight_.data().size());
    ReturnCreditLocked();
  }
  if (!waiting_.empty()) {
    WriteNextLocked();
  } else if (worker_status_.has_value()) {
    EndLocked(*worker_status_);
  }
}

void InvokeReactor::ReturnCreditLocked() {
  // In quarters of the window: a message down to the worker per chunk would cost the worker
  // hop more than the chunk. What is kept back is under a quarter, so the worker has three
  // quarters of its window whenever everything sent has been written: it never waits on it.
  const int window = deps_.invokes->window();
  const int64_t window_bytes = deps_.invokes->window_bytes();
  const bool due = owed_chunks_ >= std::max(1, window / 4) || (window_bytes > 0 && owed_bytes_ >= window_bytes / 4);
  if (!due) return;
  deps_.invokes->Credit(stream_id_, owed_chunks_, owed_bytes_);
  v1::ControllerMessage credit;
  credit.mutable_invoke_credit()->set_invoke_id(stream_id_);
  credit.mutable_invoke_credit()->set_credit(owed_chunks_);
  credit.mutable_invoke_credit()->set_credit_bytes(owed_bytes_);
  worker_->channel->Send(credit);
  owed_chunks_ = 0;
  owed_bytes_ = 0;
}

void InvokeReactor::OnCancel() {
  std::lock_guard<std::mutex> lock(mu_);
  EndLocked(grpc::Status::CANCELLED);
}

void InvokeReactor::EndLocked(const grpc::Status& status) {
  if (finished_ || end_.has_value()) return;
  LeaveWorkerLocked(/*tell_it_to_stop=*/true);  // Still working on it: not any more.
  if (writing_) {
    end_ = status;  // OnWriteDone finishes.
    return;
  }
  FinishLocked(status);
}

void InvokeReactor::FinishLocked(const grpc::Status& status, const v1::InvokeChunk* last) {
  finished_ = true;
  // Per-capability metrics. Only capabilities some worker serves get their own label, so that
  // callers asking for made-up names cannot grow the series without bound.
  const MetricLabels by_capability = {{"capability", served_ ? request_->capability() : "(none)"}};
  MetricLabels with_code = by_capability;
  // gRPC's codes are Abseil's, names included.
  with_code.emplace_back("code", absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())));
  Metrics& metrics = Metrics::Global();
  metrics.CounterAdd("gantry_invoke_requests_total", "Invoke requests by capability and outcome", with_code);
  if (sent_ > 0) {
    metrics.CounterAdd("gantry_invoke_chunks_total", "Chunks sent to callers (rate() gives chunks/s)", by_capability,
                       static_cast<double>(sent_));
    metrics.Observe("gantry_invoke_time_to_first_chunk_seconds", "From the request to its first chunk",
                    by_capability, absl::ToDoubleSeconds(first_chunk_ - started_));
  }
  if (last != nullptr) {
    StartWriteAndFinish(last, grpc::WriteOptions(), status);
  } else {
    Finish(status);
  }
}

void InvokeReactor::OnDone() {
  {
    // Waits out a delivery in progress; none comes after.
    std::lock_guard<std::mutex> lock(mailbox_->mu);
    mailbox_->consumer = nullptr;
  }
  delete this;
}

}  // namespace gantry::controller
