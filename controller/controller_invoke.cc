// ControllerService.Invoke: routes a capability request to a worker and relays its output,
// chunk by chunk, with credit flow control on the worker stream and gRPC's own on the caller's.
#include <set>

#include "absl/strings/str_cat.h"
#include "common/identity.h"
#include "common/invoke_request.h"
#include "common/metrics.h"
#include "common/proto_time.h"
#include "common/status.h"
#include "controller/controller_service.h"

namespace gantry::controller {

namespace {

constexpr char kInFlight[] = "gantry_invoke_in_flight";
constexpr char kInFlightHelp[] = "Invoke requests being served";

}  // namespace

grpc::Status ControllerServiceImpl::Invoke(grpc::ServerContext* ctx, const v1::InvokeRequest* request,
                                           grpc::ServerWriter<v1::InvokeChunk>* writer) {
  const absl::Time started = absl::Now();
  InvokeProgress progress;
  grpc::Status status = Route(ctx, *request, writer, &progress);
  // Per-capability metrics. Only capabilities some worker serves get their own label, so that
  // clients asking for made-up names cannot grow the series without bound.
  const MetricLabels by_capability = {{"capability", progress.served ? request->capability() : "(none)"}};
  MetricLabels with_code = by_capability;
  // gRPC's codes are Abseil's, names included.
  with_code.emplace_back("code", absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())));
  Metrics& metrics = Metrics::Global();
  metrics.CounterAdd("gantry_invoke_requests_total", "Invoke requests by capability and outcome", with_code);
  if (progress.chunks > 0) {
    metrics.CounterAdd("gantry_invoke_chunks_total", "Chunks sent to callers (rate() gives chunks/s)",
                       by_capability, static_cast<double>(progress.chunks));
    metrics.Observe("gantry_invoke_time_to_first_chunk_seconds", "From the request to its first chunk",
                    by_capability, absl::ToDoubleSeconds(progress.first_chunk - started));
  }
  return status;
}

grpc::Status ControllerServiceImpl::Route(grpc::ServerContext* ctx, const v1::InvokeRequest& request,
                                          grpc::ServerWriter<v1::InvokeChunk>* writer, InvokeProgress* progress) {
  if (auto peer = RequirePeerRole(ctx->auth_context().get(), Role::kApiServer, "ControllerService"); !peer.ok()) {
    return ToGrpcStatus(peer.status());
  }
  auto range = ValidateInvokeRequest(request, config_.max_invoke_payload_bytes);
  if (!range.ok()) return ToGrpcStatus(range.status());
  auto matches = [&](const std::string& version) { return range->Matches(absl::string_view(version)); };
  auto affinity = request.metadata().find("session");
  const std::string affinity_key = affinity == request.metadata().end() ? "" : affinity->second;
  const MetricLabels by_capability = {{"capability", request.capability()}};

  // A worker that fails (or is busy) before the first chunk: once more, on another worker.
  std::set<std::string> tried;
  grpc::Status last;
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto candidates = fleet_->WorkersWithCapability(request.capability(), matches);
    auto target = router_.Pick(candidates, affinity_key, tried);
    if (!target) {
      if (attempt > 0) return last;
      return ToGrpcStatus(absl::NotFoundError(absl::StrCat(
          "capability: no online worker on this node serves ", request.capability(),
          request.version().empty() ? "" : absl::StrCat(" at version ", request.version()))));
    }
    progress->served = true;
    tried.insert(target->worker_name);
    bool retry = false;
    router_.Started(target->worker_name);
    Metrics::Global().GaugeAdd(kInFlight, kInFlightHelp, by_capability, 1);
    last = InvokeOn(ctx, request, *target, writer, &retry, progress);
    Metrics::Global().GaugeAdd(kInFlight, kInFlightHelp, by_capability, -1);
    router_.Ended(target->worker_name);
    if (!retry) return last;
  }
  return last;
}

grpc::Status ControllerServiceImpl::InvokeOn(grpc::ServerContext* ctx, const v1::InvokeRequest& request,
                                             const InvokeTarget& target,
                                             grpc::ServerWriter<v1::InvokeChunk>* writer, bool* retry,
                                             InvokeProgress* progress) {
  const std::string id = invokes_->Open(target.worker_name);
  auto send = [&](const v1::ControllerMessage& m) { return target.channel->Send(m); };
  auto cancel_upstream = [&] {
    v1::ControllerMessage cancel;
    cancel.mutable_cancel_invoke()->set_invoke_id(id);
    send(cancel);
    invokes_->Close(id);
  };
  v1::ControllerMessage start;
  auto* cmd = start.mutable_invoke();
  cmd->set_invoke_id(id);
  *cmd->mutable_request() = request;
  cmd->set_credit(invokes_->window());
  // The client's deadline travels down; the worker stops the handler when it passes.
  if (ctx->deadline() != std::chrono::system_clock::time_point::max()) {
    ToProto(absl::FromChrono(ctx->deadline()), cmd->mutable_deadline());
  }
  if (!send(start)) {
    invokes_->Close(id);
    *retry = true;
    return ToGrpcStatus(absl::UnavailableError(absl::StrCat("worker ", target.worker_name, " disconnected")));
  }
  int64_t sent = 0;
  while (true) {
    if (ctx->IsCancelled()) {
      cancel_upstream();
      return grpc::Status::CANCELLED;
    }
    auto next = invokes_->Next(id, absl::Milliseconds(100));
    if (!next.ok()) {
      invokes_->Close(id);
      if (sent == 0) {
        *retry = true;
        return ToGrpcStatus(next.status());
      }
      return ToGrpcStatus(absl::UnavailableError(absl::StrCat(
          "worker ", target.worker_name, " failed after ", sent, " chunk(s); the output is incomplete (",
          next.status().message(), ")")));
    }
    if (!next->has_value()) continue;  // Nothing yet; look at the caller again.
    v1::WorkerInvokeOutput& out = **next;
    if (out.error_code() != 0) {
      invokes_->Close(id);
      *retry = sent == 0 && out.error_code() == static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED);
      return grpc::Status(static_cast<grpc::StatusCode>(out.error_code()), out.error_message());
    }
    v1::InvokeChunk* chunk = out.mutable_chunk();
    if (sent == 0) chunk->set_worker_id(target.worker_id);
    const bool last = chunk->last();
    // Blocks while the caller is slow: with the credits, that is the backpressure.
    if (!writer->Write(*chunk)) {
      cancel_upstream();
      return grpc::Status::CANCELLED;
    }
    if (sent++ == 0) progress->first_chunk = absl::Now();
    progress->chunks = sent;
    if (last) {
      invokes_->Close(id);
      return grpc::Status::OK;
    }
    v1::ControllerMessage credit;
    credit.mutable_invoke_credit()->set_invoke_id(id);
    credit.mutable_invoke_credit()->set_credit(1);
    send(credit);
  }
}

}  // namespace gantry::controller
