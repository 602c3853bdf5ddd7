// AdminService over gRPC: the admin role on every method, then AdminManager.
#pragma once

#include "api-server/admin_manager.h"
#include "api-server/authenticator.h"
#include "api-server/controller_drainer.h"
#include "api-server/database_monitor.h"
#include "api-server/join_token_store.h"
#include "api-server/priority_class_store.h"
#include "api-server/team_store.h"
#include "gantry/v1/admin_service.grpc.pb.h"

namespace gantry::api {

class AdminServiceImpl final : public v1::AdminService::Service {
 public:
  AdminServiceImpl(const DatabaseMonitor* db, Authenticator* auth, AdminManager* admin, ControllerDrainer* drainer,
                   JoinTokenStore* join_tokens, TeamStore* teams, PriorityClassStore* classes)
      : db_(db),
        auth_(auth),
        admin_(admin),
        drainer_(drainer),
        join_tokens_(join_tokens),
        teams_(teams),
        classes_(classes) {}

  grpc::Status ListControllers(grpc::ServerContext* ctx, const v1::ListControllersRequest* request,
                               v1::ListControllersResponse* response) override;
  grpc::Status GetController(grpc::ServerContext* ctx, const v1::GetControllerRequest* request,
                             v1::Controller* response) override;
  grpc::Status CordonController(grpc::ServerContext* ctx, const v1::CordonControllerRequest* request,
                                v1::Controller* response) override;
  grpc::Status UncordonController(grpc::ServerContext* ctx,
                                  const v1::UncordonControllerRequest* request,
                                  v1::Controller* response) override;
  grpc::Status DrainController(grpc::ServerContext* ctx, const v1::DrainControllerRequest* request,
                               v1::DrainControllerResponse* response) override;
  grpc::Status DeleteController(grpc::ServerContext* ctx, const v1::DeleteControllerRequest* request,
                                v1::DeleteControllerResponse* response) override;
  grpc::Status RotateControllerToken(grpc::ServerContext* ctx,
                                     const v1::RotateControllerTokenRequest* request,
                                     v1::RotateControllerTokenResponse* response) override;
  grpc::Status ListWorkers(grpc::ServerContext* ctx, const v1::ListWorkersRequest* request,
                           v1::ListWorkersResponse* response) override;
  grpc::Status GetClusterStatus(grpc::ServerContext* ctx, const v1::GetClusterStatusRequest* request,
                                v1::ClusterStatus* response) override;
  grpc::Status CreateApiKey(grpc::ServerContext* ctx, const v1::CreateApiKeyRequest* request,
                            v1::CreateApiKeyResponse* response) override;
  grpc::Status RevokeApiKey(grpc::ServerContext* ctx, const v1::RevokeApiKeyRequest* request,
                            v1::RevokeApiKeyResponse* response) override;
  grpc::Status CreateTemplate(grpc::ServerContext* ctx, const v1::CreateTemplateRequest* request,
                              v1::SessionTemplate* response) override;
  grpc::Status ListTemplates(grpc::ServerContext* ctx, const v1::ListTemplatesRequest* request,
                             v1::ListTemplatesResponse* response) override;
  grpc::Status DeleteTemplate(grpc::ServerContext* ctx, const v1::DeleteTemplateRequest* request,
                              v1::DeleteTemplateResponse* response) override;
  grpc::Status CreateJoinToken(grpc::ServerContext* ctx, const v1::CreateJoinTokenRequest* request,
                               v1::CreateJoinTokenResponse* response) override;
  grpc::Status ListJoinTokens(grpc::ServerContext* ctx, const v1::ListJoinTokensRequest* request,
                              v1::ListJoinTokensResponse* response) override;
  grpc::Status RevokeJoinToken(grpc::ServerContext* ctx, const v1::RevokeJoinTokenRequest* request,
                               v1::RevokeJoinTokenResponse* response) override;
  grpc::Status SetPrincipalTeam(grpc::ServerContext* ctx, const v1::SetPrincipalTeamRequest* request,
                                v1::SetPrincipalTeamResponse* response) override;
  grpc::Status ListTeams(grpc::ServerContext* ctx, const v1::ListTeamsRequest* request,
                         v1::ListTeamsResponse* response) override;
  grpc::Status SetQuota(grpc::ServerContext* ctx, const v1::SetQuotaRequest* request, v1::Quota* response) override;
  grpc::Status GetQuota(grpc::ServerContext* ctx, const v1::GetQuotaRequest* request, v1::Quota* response) override;
  grpc::Status ListQuotas(grpc::ServerContext* ctx, const v1::ListQuotasRequest* request,
                          v1::ListQuotasResponse* response) override;
  grpc::Status DeleteQuota(grpc::ServerContext* ctx, const v1::DeleteQuotaRequest* request,
                           v1::DeleteQuotaResponse* response) override;
  grpc::Status CreatePriorityClass(grpc::ServerContext* ctx, const v1::CreatePriorityClassRequest* request,
                                   v1::PriorityClass* response) override;
  grpc::Status ListPriorityClasses(grpc::ServerContext* ctx, const v1::ListPriorityClassesRequest* request,
                                   v1::ListPriorityClassesResponse* response) override;
  grpc::Status DeletePriorityClass(grpc::ServerContext* ctx, const v1::DeletePriorityClassRequest* request,
                                   v1::DeletePriorityClassResponse* response) override;

 private:
  // The admin calling, once the database is ready and the caller authenticated as one.
  absl::StatusOr<Caller> Admit(grpc::ServerContext* ctx);

  const DatabaseMonitor* db_;
  Authenticator* auth_;
  AdminManager* admin_;
  ControllerDrainer* drainer_;
  JoinTokenStore* join_tokens_;
  TeamStore* teams_;
  PriorityClassStore* classes_;
};

}  // namespace gantry::api
