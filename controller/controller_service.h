// ControllerService: the API server's handle on this node. Only spiffe://gantry/api-server may
// call it. Session work is delegated to Fleet.
#pragma once

#include "controller/fleet.h"
#include "controller/credit_relay.h"
#include "controller/invoke_reactor.h"
#include "controller/invoke_router.h"
#include "controller/log_stream_reactor.h"
#include "gantry/v1/controller_service.grpc.pb.h"

namespace gantry::controller {

struct ControllerServiceConfig {
  std::string type = "gpu-node";
  std::map<std::string, std::string> labels;
  absl::Duration stop_grace = absl::Seconds(10);
  int64_t max_invoke_payload_bytes = 4 << 20;
  // Takes a rotated token for this controller's id (ApiLink::AdoptToken).
  std::function<absl::Status(const std::string& controller_id, const std::string& token)> adopt_token;
  // This controller's id, once registered ("" before): what SetCordoned must name.
  std::function<std::string()> controller_id;
};

// Invoke and StreamLogs are on gRPC's callback API (InvokeReactor, LogStreamReactor: no thread
// per stream); the rest are synchronous.
class ControllerServiceImpl final
    : public v1::ControllerService::WithCallbackMethod_StreamLogs<
          v1::ControllerService::WithCallbackMethod_Invoke<v1::ControllerService::Service>> {
 public:
  ControllerServiceImpl(Fleet* fleet, LogRelay* logs, InvokeRelay* invokes, ControllerServiceConfig config)
      : fleet_(fleet), logs_(logs), invokes_(invokes), config_(std::move(config)) {}

  grpc::Status CreateSession(grpc::ServerContext* ctx,
                             const v1::ControllerCreateSessionRequest* request,
                             v1::ControllerSessionResponse* response) override;
  grpc::Status DeleteSession(grpc::ServerContext* ctx, const v1::ControllerSessionRequest* request,
                             v1::ControllerSessionResponse* response) override;
  grpc::Status HibernateSession(grpc::ServerContext* ctx,
                                const v1::ControllerSessionRequest* request,
                                v1::ControllerSessionResponse* response) override;
  grpc::Status WakeSession(grpc::ServerContext* ctx, const v1::ControllerSessionRequest* request,
                           v1::ControllerSessionResponse* response) override;
  grpc::Status GetSessionStatus(grpc::ServerContext* ctx,
                                const v1::ControllerSessionRequest* request,
                                v1::SessionStatusResponse* response) override;
  grpc::Status GetSessionMetrics(grpc::ServerContext* ctx,
                                 const v1::ControllerSessionRequest* request,
                                 v1::SessionMetricsResponse* response) override;
  grpc::ServerWriteReactor<v1::LogEntry>* StreamLogs(grpc::CallbackServerContext* ctx,
                                                     const v1::ControllerStreamLogsRequest* request) override;
  grpc::Status GetCapabilities(grpc::ServerContext* ctx, const v1::GetCapabilitiesRequest* request,
                               v1::CapabilitiesResponse* response) override;
  grpc::Status HealthCheck(grpc::ServerContext* ctx, const v1::HealthCheckRequest* request,
                           v1::HealthCheckResponse* response) override;
  grpc::Status ListWorkers(grpc::ServerContext* ctx, const v1::ListWorkersRequest* request,
                           v1::ListWorkersResponse* response) override;
  grpc::ServerWriteReactor<v1::InvokeChunk>* Invoke(grpc::CallbackServerContext* ctx,
                                                    const v1::InvokeRequest* request) override;
  grpc::Status AdoptToken(grpc::ServerContext* ctx, const v1::AdoptTokenRequest* request,
                          v1::AdoptTokenResponse* response) override;
  grpc::Status SetCordoned(grpc::ServerContext* ctx, const v1::SetCordonedRequest* request,
                           v1::SetCordonedResponse* response) override;

 private:
  Fleet* fleet_;
  LogRelay* logs_;
  InvokeRelay* invokes_;
  InvokeRouter router_;
  ControllerServiceConfig config_;
};

}  // namespace gantry::controller
