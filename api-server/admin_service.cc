#include "api-server/admin_service.h"

#include <algorithm>

#include "common/call_deadline.h"
#include "common/status.h"

namespace gantry::api {

absl::StatusOr<Caller> AdminServiceImpl::Admit(grpc::ServerContext* ctx) {
  RETURN_IF_ERROR(db_->CheckReady());
  return auth_->AuthenticateAdmin(*ctx);
}

#define GANTRY_ADMIT(ctx) \
  if (absl::Status s = Admit(ctx).status(); !s.ok()) return ToGrpcStatus(s)

grpc::Status AdminServiceImpl::ListControllers(grpc::ServerContext* ctx,
                                               const v1::ListControllersRequest* request,
                                               v1::ListControllersResponse* response) {
  GANTRY_ADMIT(ctx);
  return Reply(admin_->ListControllers(*request), response);
}

grpc::Status AdminServiceImpl::GetController(grpc::ServerContext* ctx,
                                             const v1::GetControllerRequest* request,
                                             v1::Controller* response) {
  GANTRY_ADMIT(ctx);
  return Reply(admin_->GetController(request->id()), response);
}

grpc::Status AdminServiceImpl::CordonController(grpc::ServerContext* ctx,
                                                const v1::CordonControllerRequest* request,
                                                v1::Controller* response) {
  GANTRY_ADMIT(ctx);
  return Reply(admin_->SetCordoned(request->id(), true), response);
}

grpc::Status AdminServiceImpl::UncordonController(grpc::ServerContext* ctx,
                                                  const v1::UncordonControllerRequest* request,
                                                  v1::Controller* response) {
  GANTRY_ADMIT(ctx);
  return Reply(admin_->SetCordoned(request->id(), false), response);
}

grpc::Status AdminServiceImpl::DrainController(grpc::ServerContext* ctx,
                                               const v1::DrainControllerRequest* request,
                                               v1::DrainControllerResponse* response) {
  auto caller = Admit(ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  // Within the caller's deadline (a second to spare for the answer), a minute at most.
  const absl::Time deadline = std::min(absl::Now() + absl::Minutes(1), CallDeadline(*ctx) - absl::Seconds(1));
  return Reply(drainer_->Drain(*caller, request->id(), deadline), response);
}

grpc::Status AdminServiceImpl::DeleteController(grpc::ServerContext* ctx,
                                                const v1::DeleteControllerRequest* request,
                                                v1::DeleteControllerResponse*) {
  GANTRY_ADMIT(ctx);
  return ToGrpcStatus(admin_->DeleteController(request->id()));
}

grpc::Status AdminServiceImpl::RotateControllerToken(grpc::ServerContext* ctx,
                                                     const v1::RotateControllerTokenRequest* request,
                                                     v1::RotateControllerTokenResponse* response) {
  GANTRY_ADMIT(ctx);
  return Reply(admin_->RotateToken(request->id()), response);
}

grpc::Status AdminServiceImpl::ListWorkers(grpc::ServerContext* ctx,
                                           const v1::ListWorkersRequest* request,
                                           v1::ListWorkersResponse* response) {
  GANTRY_ADMIT(ctx);
  return Reply(admin_->ListWorkers(*request), response);
}

grpc::Status AdminServiceImpl::GetClusterStatus(grpc::ServerContext* ctx,
                                                const v1::GetClusterStatusRequest*,
                                                v1::ClusterStatus* response) {
  GANTRY_ADMIT(ctx);
  return Reply(admin_->ClusterStatus(), response);
}

grpc::Status AdminServiceImpl::CreateApiKey(grpc::ServerContext* ctx,
                                            const v1::CreateApiKeyRequest* request,
                                            v1::CreateApiKeyResponse* response) {
  GANTRY_ADMIT(ctx);
  return Reply(admin_->CreateApiKey(*request), response);
}

grpc::Status AdminServiceImpl::RevokeApiKey(grpc::ServerContext* ctx,
                                            const v1::RevokeApiKeyRequest* request,
                                            v1::RevokeApiKeyResponse*) {
  GANTRY_ADMIT(ctx);
  return ToGrpcStatus(admin_->RevokeApiKey(*request));
}

grpc::Status AdminServiceImpl::CreateTemplate(grpc::ServerContext* ctx,
                                              const v1::CreateTemplateRequest* request,
                                              v1::SessionTemplate* response) {
  GANTRY_ADMIT(ctx);
  return Reply(admin_->CreateTemplate(*request), response);
}

grpc::Status AdminServiceImpl::ListTemplates(grpc::ServerContext* ctx, const v1::ListTemplatesRequest*,
                                             v1::ListTemplatesResponse* response) {
  GANTRY_ADMIT(ctx);
  return Reply(admin_->ListTemplates(), response);
}

grpc::Status AdminServiceImpl::DeleteTemplate(grpc::ServerContext* ctx,
                                              const v1::DeleteTemplateRequest* request,
                                              v1::DeleteTemplateResponse*) {
  GANTRY_ADMIT(ctx);
  return ToGrpcStatus(admin_->DeleteTemplate(request->id()));
}

grpc::Status AdminServiceImpl::CreateJoinToken(grpc::ServerContext* ctx, const v1::CreateJoinTokenRequest* request,
                                               v1::CreateJoinTokenResponse* response) {
  if (absl::Status s = db_->CheckReady(); !s.ok()) return ToGrpcStatus(s);
  auto admin = auth_->AuthenticateAdmin(*ctx);
  if (!admin.ok()) return ToGrpcStatus(admin.status());
  return Reply(join_tokens_->Create(*request, admin->principal), response);
}

grpc::Status AdminServiceImpl::ListJoinTokens(grpc::ServerContext* ctx, const v1::ListJoinTokensRequest*,
                                              v1::ListJoinTokensResponse* response) {
  GANTRY_ADMIT(ctx);
  return Reply(join_tokens_->List(), response);
}

grpc::Status AdminServiceImpl::RevokeJoinToken(grpc::ServerContext* ctx, const v1::RevokeJoinTokenRequest* request,
                                               v1::RevokeJoinTokenResponse*) {
  GANTRY_ADMIT(ctx);
  return ToGrpcStatus(join_tokens_->Revoke(request->id()));
}

grpc::Status AdminServiceImpl::SetPrincipalTeam(grpc::ServerContext* ctx, const v1::SetPrincipalTeamRequest* request,
                                                v1::SetPrincipalTeamResponse*) {
  GANTRY_ADMIT(ctx);
  return ToGrpcStatus(teams_->SetPrincipalTeam(*request));
}

grpc::Status AdminServiceImpl::ListTeams(grpc::ServerContext* ctx, const v1::ListTeamsRequest*,
                                         v1::ListTeamsResponse* response) {
  GANTRY_ADMIT(ctx);
  return Reply(teams_->ListTeams(), response);
}

grpc::Status AdminServiceImpl::SetQuota(grpc::ServerContext* ctx, const v1::SetQuotaRequest* request,
                                        v1::Quota* response) {
  GANTRY_ADMIT(ctx);
  return Reply(teams_->SetQuota(*request), response);
}

grpc::Status AdminServiceImpl::GetQuota(grpc::ServerContext* ctx, const v1::GetQuotaRequest* request,
                                        v1::Quota* response) {
  GANTRY_ADMIT(ctx);
  return Reply(teams_->GetQuota(request->team()), response);
}

grpc::Status AdminServiceImpl::ListQuotas(grpc::ServerContext* ctx, const v1::ListQuotasRequest*,
                                          v1::ListQuotasResponse* response) {
  GANTRY_ADMIT(ctx);
  return Reply(teams_->ListQuotas(), response);
}

grpc::Status AdminServiceImpl::DeleteQuota(grpc::ServerContext* ctx, const v1::DeleteQuotaRequest* request,
                                           v1::DeleteQuotaResponse*) {
  GANTRY_ADMIT(ctx);
  return ToGrpcStatus(teams_->DeleteQuota(request->team()));
}

grpc::Status AdminServiceImpl::CreatePriorityClass(grpc::ServerContext* ctx,
                                                   const v1::CreatePriorityClassRequest* request,
                                                   v1::PriorityClass* response) {
  GANTRY_ADMIT(ctx);
  return Reply(classes_->Create(*request), response);
}

grpc::Status AdminServiceImpl::ListPriorityClasses(grpc::ServerContext* ctx, const v1::ListPriorityClassesRequest*,
                                                   v1::ListPriorityClassesResponse* response) {
  GANTRY_ADMIT(ctx);
  return Reply(classes_->List(), response);
}

grpc::Status AdminServiceImpl::DeletePriorityClass(grpc::ServerContext* ctx,
                                                   const v1::DeletePriorityClassRequest* request,
                                                   v1::DeletePriorityClassResponse*) {
  GANTRY_ADMIT(ctx);
  return ToGrpcStatus(classes_->Delete(request->name()));
}

}  // namespace gantry::api
