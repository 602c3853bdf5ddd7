#include "api-server/admin_service.h"

#include "common/status.h"

namespace gantry::api {

grpc::Status AdminServiceImpl::NotYet(grpc::ServerContext* ctx, const char* method) {
  auto caller = auth_->AuthenticateAdmin(*ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      std::string("AdminService.") + method +
                          " is not implemented yet (planned in the API control-plane issue)");
}

}  // namespace gantry::api
