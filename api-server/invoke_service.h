// InvokeService: authenticated today; capability routing is the invoke issue's work and
// answers UNIMPLEMENTED until then.
#pragma once

#include "api-server/authenticator.h"
#include "gantry/v1/invoke_service.grpc.pb.h"

namespace gantry::api {

class InvokeServiceImpl final : public v1::InvokeService::Service {
 public:
  explicit InvokeServiceImpl(Authenticator* auth) : auth_(auth) {}

  grpc::Status Invoke(grpc::ServerContext* ctx, const v1::InvokeRequest* request,
                      grpc::ServerWriter<v1::InvokeChunk>* writer) override;

 private:
  Authenticator* auth_;
};

}  // namespace gantry::api
