#include "api-server/invoke_service.h"

#include "common/status.h"

namespace gantry::api {

grpc::Status InvokeServiceImpl::Invoke(grpc::ServerContext* ctx, const v1::InvokeRequest*,
                                       grpc::ServerWriter<v1::InvokeChunk>*) {
  auto caller = auth_->AuthenticateClient(*ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      "InvokeService.Invoke is not implemented yet (planned in the "
                      "capability-routed streaming issue)");
}

}  // namespace gantry::api
