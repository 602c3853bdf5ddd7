#include "controller/worker_service.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/identity.h"
#include "common/status.h"
#include "controller/worker_stream_channel.h"

namespace gantry::controller {
namespace {

absl::StatusOr<Identity> WorkerIdentity(const grpc::ServerContext& ctx) {
  return RequirePeerRole(ctx.auth_context().get(), Role::kWorker, "WorkerService");
}

}  // namespace

grpc::Status WorkerServiceImpl::RegisterWorker(grpc::ServerContext* ctx,
                                               const v1::RegisterWorkerRequest* request,
                                               v1::RegisterWorkerResponse* response) {
  auto identity = WorkerIdentity(*ctx);
  if (!identity.ok()) return ToGrpcStatus(identity.status());
  if (request->name() != identity->name) {
    return ToGrpcStatus(absl::PermissionDeniedError(absl::StrCat(
        "name: \"", request->name().substr(0, 63), "\" does not match the certificate's worker \"",
        identity->name, "\"")));
  }
  auto id = fleet_->RegisterWorker(*request);
  if (!id.ok()) return ToGrpcStatus(id.status());
  response->set_worker_id(*id);
  response->set_heartbeat_interval_ms(
      static_cast<int32_t>(absl::ToInt64Milliseconds(heartbeat_interval_)));
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::Connect(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<v1::ControllerMessage, v1::WorkerMessage>* stream) {
  auto identity = WorkerIdentity(*ctx);
  if (!identity.ok()) return ToGrpcStatus(identity.status());
  v1::WorkerMessage message;
  if (!stream->Read(&message)) return grpc::Status::CANCELLED;
  if (message.msg_case() != v1::WorkerMessage::kHello) {
    return ToGrpcStatus(absl::InvalidArgumentError("the first message on Connect must be hello"));
  }
  auto channel = std::make_shared<WorkerStreamChannel>(ctx, stream);
  absl::Status attached = fleet_->Attach(identity->name, message.hello(), channel);
  if (!attached.ok()) {
    channel->Invalidate();
    return ToGrpcStatus(attached);
  }
  absl::Status ended = absl::OkStatus();
  std::string reason = "stream closed";
  while (stream->Read(&message)) {
    switch (message.msg_case()) {
      case v1::WorkerMessage::kHeartbeat:
        fleet_->Heartbeat(identity->name, message.heartbeat());
        break;
      case v1::WorkerMessage::kSessionEvent:
        ended = fleet_->OnWorkerEvent(identity->name, message.session_event());
        break;
      case v1::WorkerMessage::kLogs:
        logs_->Deliver(identity->name, message.logs());
        break;
      case v1::WorkerMessage::kMetrics:
        fleet_->OnMetrics(identity->name, message.metrics());
        break;
      case v1::WorkerMessage::kInvokeOutput:
        invokes_->Deliver(identity->name, message.invoke_output());
        break;
      default:
        ended = absl::InvalidArgumentError("WorkerMessage: unknown or empty message");
    }
    if (!ended.ok()) {
      reason = absl::StrCat("malformed message: ", ended.message());
      break;
    }
  }
  if (ctx->IsCancelled()) reason = "missed heartbeats or cancelled";
  // Gone for everyone at once; only then wait for a write still stuck on a worker that stopped
  // reading (see WorkerStreamChannel), which the transport's keepalive ends.
  logs_->WorkerLost(identity->name);
  invokes_->WorkerLost(identity->name);
  fleet_->Detach(identity->name, reason);
  channel->Invalidate();
  return ToGrpcStatus(ended);
}

}  // namespace gantry::controller
