// RegistryService over gRPC: controller certificate required on every call; the join token
// or per-controller token checked by RegistryManager.
#pragma once

#include "api-server/authenticator.h"
#include "api-server/database_monitor.h"
#include "api-server/registry_manager.h"
#include "gantry/v1/registry_service.grpc.pb.h"

namespace gantry::api {

class RegistryServiceImpl final : public v1::RegistryService::Service {
 public:
  // `limiter` slows down guessing of the join token.
  RegistryServiceImpl(const DatabaseMonitor* db, Authenticator* auth, RegistryManager* registry,
                      FailedAuthLimiter* limiter)
      : db_(db), auth_(auth), registry_(registry), limiter_(limiter) {}

  grpc::Status RegisterController(grpc::ServerContext* ctx,
                                  const v1::RegisterControllerRequest* request,
                                  v1::RegisterControllerResponse* response) override;
  grpc::Status Heartbeat(grpc::ServerContext* ctx, const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse* response) override;
  grpc::Status Deregister(grpc::ServerContext* ctx, const v1::DeregisterRequest* request,
                          v1::DeregisterResponse* response) override;
  grpc::Status ReportSessionEvents(grpc::ServerContext* ctx,
                                   const v1::ReportSessionEventsRequest* request,
                                   v1::ReportSessionEventsResponse* response) override;

 private:
  absl::StatusOr<Identity> Admit(grpc::ServerContext* ctx);

  const DatabaseMonitor* db_;
  Authenticator* auth_;
  RegistryManager* registry_;
  FailedAuthLimiter* limiter_;
};

}  // namespace gantry::api
