#include "api-server/registry_service.h"

#include "common/call_deadline.h"
#include "common/status.h"

namespace gantry::api {

absl::StatusOr<Identity> RegistryServiceImpl::Admit(grpc::ServerContext* ctx) {
  // Identity first: an unauthenticated caller learns nothing about the database.
  auto identity = auth_->AuthenticateController(*ctx);
  if (!identity.ok()) return identity;
  RETURN_IF_ERROR(db_->CheckReady());
  return identity;
}

grpc::Status RegistryServiceImpl::RegisterController(grpc::ServerContext* ctx,
                                                     const v1::RegisterControllerRequest* request,
                                                     v1::RegisterControllerResponse* response) {
  auto identity = Admit(ctx);
  if (!identity.ok()) return ToGrpcStatus(identity.status());
  auto key = PeerPublicKey(*ctx->auth_context());
  if (!key.ok()) return ToGrpcStatus(absl::UnauthenticatedError(key.status().message()));
  // Register answers UNAUTHENTICATED only for the join token.
  auto result = limiter_->Guard(ctx->peer(), [&] { return registry_->Register(*identity, KeySha256(*key), *request); });
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = std::move(*result);
  return grpc::Status::OK;
}

grpc::Status RegistryServiceImpl::Heartbeat(grpc::ServerContext* ctx,
                                            const v1::HeartbeatRequest* request,
                                            v1::HeartbeatResponse* response) {
  auto identity = Admit(ctx);
  if (!identity.ok()) return ToGrpcStatus(identity.status());
  // Answered before the caller gives up (a moment to spare for the way back), or UNAVAILABLE.
  auto result = registry_->Heartbeat(*identity, *request, CallDeadline(*ctx) - absl::Milliseconds(200));
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = std::move(*result);
  return grpc::Status::OK;
}

grpc::Status RegistryServiceImpl::Deregister(grpc::ServerContext* ctx,
                                             const v1::DeregisterRequest* request,
                                             v1::DeregisterResponse*) {
  auto identity = Admit(ctx);
  if (!identity.ok()) return ToGrpcStatus(identity.status());
  return ToGrpcStatus(registry_->Deregister(*identity, *request));
}

grpc::Status RegistryServiceImpl::ReportSessionEvents(grpc::ServerContext* ctx,
                                                      const v1::ReportSessionEventsRequest* request,
                                                      v1::ReportSessionEventsResponse* response) {
  auto identity = Admit(ctx);
  if (!identity.ok()) return ToGrpcStatus(identity.status());
  auto result = registry_->ReportSessionEvents(*identity, *request);
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = std::move(*result);
  return grpc::Status::OK;
}

}  // namespace gantry::api
