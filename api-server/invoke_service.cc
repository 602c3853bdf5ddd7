#include "api-server/invoke_service.h"

#include "common/request_ids.h"
#include "common/status.h"

namespace gantry::api {

grpc::ServerWriteReactor<v1::InvokeChunk>* InvokeServiceImpl::Invoke(grpc::CallbackServerContext* ctx,
                                                                     const v1::InvokeRequest* request) {
  return InvokeReactor::Start(deps_, ctx, *request);
}

grpc::ServerUnaryReactor* InvokeServiceImpl::ListCapabilities(grpc::CallbackServerContext* ctx,
                                                              const v1::ListCapabilitiesRequest* request,
                                                              v1::ListCapabilitiesResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto job = [this, reactor, credentials = CallCredentials::Of(*ctx), request, response,
              ids = CopyCurrentRequestIds()] {
    MaybeRequestIdScope scope(ids);
    absl::StatusOr<Caller> caller = deps_.auth->AuthenticateClient(credentials);
    if (!caller.ok()) return reactor->Finish(ToGrpcStatus(caller.status()));
    if (request->prefix().size() > 256) {
      return reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "prefix: at most 256 bytes"));
    }
    auto served = store_->ServedCapabilities(request->prefix());
    if (!served.ok()) return reactor->Finish(ToGrpcStatus(served.status()));
    for (v1::ServedCapability& c : *served) *response->add_capabilities() = std::move(c);
    reactor->Finish(grpc::Status::OK);
  };
  if (!deps_.jobs->TrySubmit(job)) {
    reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "the API server is too busy; try again"));
  }
  return reactor;
}

}  // namespace gantry::api
