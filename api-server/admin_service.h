// AdminService: the admin role is enforced on every method today; the fleet operations
// themselves are the API control-plane issue's work and answer UNIMPLEMENTED until then.
#pragma once

#include "api-server/authenticator.h"
#include "gantry/v1/admin_service.grpc.pb.h"

namespace gantry::api {

class AdminServiceImpl final : public v1::AdminService::Service {
 public:
  explicit AdminServiceImpl(Authenticator* auth) : auth_(auth) {}

#define GANTRY_ADMIN_METHOD(Method, Request, Response) \
  grpc::Status Method(grpc::ServerContext* ctx, const v1::Request*, v1::Response*) override { \
    return NotYet(ctx, #Method);                                                              \
  }
  GANTRY_ADMIN_METHOD(ListControllers, ListControllersRequest, ListControllersResponse)
  GANTRY_ADMIN_METHOD(GetController, GetControllerRequest, Controller)
  GANTRY_ADMIN_METHOD(CordonController, CordonControllerRequest, Controller)
  GANTRY_ADMIN_METHOD(UncordonController, UncordonControllerRequest, Controller)
  GANTRY_ADMIN_METHOD(DrainController, DrainControllerRequest, DrainControllerResponse)
  GANTRY_ADMIN_METHOD(DeleteController, DeleteControllerRequest, DeleteControllerResponse)
  GANTRY_ADMIN_METHOD(RotateControllerToken, RotateControllerTokenRequest, RotateControllerTokenResponse)
  GANTRY_ADMIN_METHOD(ListWorkers, ListWorkersRequest, ListWorkersResponse)
  GANTRY_ADMIN_METHOD(GetClusterStatus, GetClusterStatusRequest, ClusterStatus)
  GANTRY_ADMIN_METHOD(CreateApiKey, CreateApiKeyRequest, CreateApiKeyResponse)
  GANTRY_ADMIN_METHOD(RevokeApiKey, RevokeApiKeyRequest, RevokeApiKeyResponse)
#undef GANTRY_ADMIN_METHOD

 private:
  grpc::Status NotYet(grpc::ServerContext* ctx, const char* method);

  Authenticator* auth_;
};

}  // namespace gantry::api
