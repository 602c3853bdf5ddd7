#include "controller/worker_service.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/identity.h"
#include "common/status.h"
#include "controller/worker_connect_reactor.h"

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

grpc::ServerBidiReactor<v1::WorkerMessage, v1::ControllerMessage>* WorkerServiceImpl::Connect(
    grpc::CallbackServerContext* context) {
  return WorkerConnectReactor::Start({fleet_, logs_, invokes_}, context);
}

}  // namespace gantry::controller
