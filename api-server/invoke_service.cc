#include "api-server/invoke_service.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/invoke_request.h"
#include "common/metrics.h"
#include "common/status.h"

namespace gantry::api {

grpc::Status InvokeServiceImpl::Invoke(grpc::ServerContext* ctx, const v1::InvokeRequest* request,
                                       grpc::ServerWriter<v1::InvokeChunk>* writer) {
  auto caller = auth_->AuthenticateClient(*ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto lease = streams_->Acquire(caller->principal);
  if (!lease.ok()) return ToGrpcStatus(lease.status());
  auto range = ValidateInvokeRequest(*request, max_payload_bytes_);
  if (!range.ok()) return ToGrpcStatus(range.status());
  auto candidates = controllers_->InvokeCandidates(
      request->capability(), [&](const std::string& v) { return range->Matches(absl::string_view(v)); },
      max_attempts_);
  if (!candidates.ok()) return ToGrpcStatus(candidates.status());
  if (candidates->empty()) {
    return ToGrpcStatus(absl::NotFoundError(absl::StrCat(
        "capability: no healthy controller serves ", request->capability(),
        request->version().empty() ? "" : absl::StrCat(" at a version matching \"", request->version(), "\""))));
  }
  absl::Status last;
  const absl::Time start = absl::Now();
  bool answered = false;
  for (const ControllerTarget& target : *candidates) {
    (void)controllers_->NoteSelected(target.id);
    int64_t chunks = 0;
    last = client_->Invoke(target.endpoint, *ctx, *request, [&](const v1::InvokeChunk& received) {
      v1::InvokeChunk chunk = received;
      chunk.set_controller_id(target.id);
      if (!answered) {
        answered = true;
        Metrics::Global().Observe("gantry_invoke_time_to_first_chunk_seconds",
                                  "Time from an invoke request to its first chunk, by capability",
                                  {{"capability", request->capability()}}, absl::ToDoubleSeconds(absl::Now() - start));
      }
      return writer->Write(chunk);  // Blocks while the client is slow: backpressure.
    }, &chunks);
    // Only a refusal before any output may go to another controller.
    bool refused = last.code() == absl::StatusCode::kUnavailable || last.code() == absl::StatusCode::kResourceExhausted;
    if (chunks > 0 || !refused || ctx->IsCancelled()) break;
    spdlog::info("invoke of {} refused by controller {}: {}", request->capability(), target.name, last.ToString());
  }
  if (ctx->IsCancelled()) return grpc::Status::CANCELLED;
  return ToGrpcStatus(last);
}

}  // namespace gantry::api
