// ControllerService.Invoke: InvokeReactor does the work.
#include "controller/controller_service.h"

namespace gantry::controller {

grpc::ServerWriteReactor<v1::InvokeChunk>* ControllerServiceImpl::Invoke(grpc::CallbackServerContext* ctx,
                                                                         const v1::InvokeRequest* request) {
  return InvokeReactor::Start({fleet_, invokes_, &router_, config_.max_invoke_payload_bytes}, ctx, request);
}

}  // namespace gantry::controller
