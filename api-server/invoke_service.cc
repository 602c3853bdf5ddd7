#include "api-server/invoke_service.h"

namespace gantry::api {

grpc::ServerWriteReactor<v1::InvokeChunk>* InvokeServiceImpl::Invoke(grpc::CallbackServerContext* ctx,
                                                                     const v1::InvokeRequest* request) {
  return InvokeReactor::Start(deps_, ctx, *request);
}

}  // namespace gantry::api
