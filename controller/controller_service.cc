#include "controller/controller_service.h"

#include "absl/strings/str_cat.h"
#include "common/identity.h"
#include "common/request_ids.h"
#include "common/status.h"

namespace gantry::controller {
namespace {

absl::Status RequireApiServer(const grpc::ServerContext& ctx) {
  return RequirePeerRole(ctx.auth_context().get(), Role::kApiServer, "ControllerService").status();
}

absl::Status CheckSessionId(const std::string& id) {
  if (id.empty() || id.size() > 64) return absl::InvalidArgumentError("session_id: required, at most 64 bytes");
  return absl::OkStatus();
}

}  // namespace

#define GANTRY_REQUIRE_API_SERVER(ctx)                                          \
  if (absl::Status s = RequireApiServer(*ctx); !s.ok()) return ToGrpcStatus(s)

grpc::Status ControllerServiceImpl::CreateSession(grpc::ServerContext* ctx,
                                                  const v1::ControllerCreateSessionRequest* request,
                                                  v1::ControllerSessionResponse* response) {
  NoteSession(request->session_id());
  GANTRY_REQUIRE_API_SERVER(ctx);
  if (absl::Status s = CheckSessionId(request->session_id()); !s.ok()) return ToGrpcStatus(s);
  if (request->spec().command_size() == 0) {
    return ToGrpcStatus(absl::InvalidArgumentError("spec.command: empty"));
  }
  return Reply(fleet_->StartSession(request->session_id(), request->spec()), response);
}

grpc::Status ControllerServiceImpl::DeleteSession(grpc::ServerContext* ctx,
                                                  const v1::ControllerSessionRequest* request,
                                                  v1::ControllerSessionResponse* response) {
  NoteSession(request->session_id());
  GANTRY_REQUIRE_API_SERVER(ctx);
  if (absl::Status s = CheckSessionId(request->session_id()); !s.ok()) return ToGrpcStatus(s);
  return Reply(fleet_->StopSession(request->session_id(), config_.stop_grace, absl::Seconds(5)),
               response);
}

grpc::Status ControllerServiceImpl::HibernateSession(grpc::ServerContext* ctx,
                                                     const v1::ControllerSessionRequest* request,
                                                     v1::ControllerSessionResponse* response) {
  NoteSession(request->session_id());
  GANTRY_REQUIRE_API_SERVER(ctx);
  if (absl::Status s = CheckSessionId(request->session_id()); !s.ok()) return ToGrpcStatus(s);
  return Reply(fleet_->SetHibernated(request->session_id(), true, absl::Seconds(5)), response);
}

grpc::Status ControllerServiceImpl::WakeSession(grpc::ServerContext* ctx,
                                                const v1::ControllerSessionRequest* request,
                                                v1::ControllerSessionResponse* response) {
  NoteSession(request->session_id());
  GANTRY_REQUIRE_API_SERVER(ctx);
  if (absl::Status s = CheckSessionId(request->session_id()); !s.ok()) return ToGrpcStatus(s);
  return Reply(fleet_->SetHibernated(request->session_id(), false, absl::Seconds(5)), response);
}

grpc::Status ControllerServiceImpl::GetSessionStatus(grpc::ServerContext* ctx,
                                                     const v1::ControllerSessionRequest* request,
                                                     v1::SessionStatusResponse* response) {
  NoteSession(request->session_id());
  GANTRY_REQUIRE_API_SERVER(ctx);
  return Reply(fleet_->SessionStatus(request->session_id()), response);
}

grpc::Status ControllerServiceImpl::GetSessionMetrics(grpc::ServerContext* ctx,
                                                      const v1::ControllerSessionRequest* request,
                                                      v1::SessionMetricsResponse* response) {
  NoteSession(request->session_id());
  GANTRY_REQUIRE_API_SERVER(ctx);
  return Reply(fleet_->Metrics(request->session_id()), response);
}

grpc::ServerWriteReactor<v1::LogEntry>* ControllerServiceImpl::StreamLogs(
    grpc::CallbackServerContext* ctx, const v1::ControllerStreamLogsRequest* request) {
  NoteSession(request->session_id());
  absl::Status refused = RequirePeerRole(ctx->auth_context().get(), Role::kApiServer, "ControllerService").status();
  if (refused.ok()) refused = CheckSessionId(request->session_id());
  if (refused.ok() && request->tail_lines() < 0) refused = absl::InvalidArgumentError("tail_lines: must not be negative");
  return LogStreamReactor::Start(fleet_, logs_, *request, refused);
}

grpc::Status ControllerServiceImpl::GetCapabilities(grpc::ServerContext* ctx,
                                                    const v1::GetCapabilitiesRequest*,
                                                    v1::CapabilitiesResponse* response) {
  GANTRY_REQUIRE_API_SERVER(ctx);
  FleetSnapshot snap = fleet_->Snapshot();
  response->set_controller_type(config_.type);
  response->set_version("0.1.0");
  response->set_supports_hibernation(true);
  response->set_supports_gpu(true);
  *response->mutable_capacity() = snap.capacity;
  for (const auto& [k, v] : config_.labels) (*response->mutable_labels())[k] = v;
  for (const auto& s : snap.skills) response->add_skills(s);
  for (const auto& c : snap.capabilities) *response->add_capabilities() = c;
  return grpc::Status::OK;
}

grpc::Status ControllerServiceImpl::AdoptToken(grpc::ServerContext* ctx, const v1::AdoptTokenRequest* request,
                                               v1::AdoptTokenResponse*) {
  GANTRY_REQUIRE_API_SERVER(ctx);
  if (!config_.adopt_token) return ToGrpcStatus(absl::UnavailableError("not registered with the API server yet"));
  return ToGrpcStatus(config_.adopt_token(request->controller_id(), request->controller_token()));
}

grpc::Status ControllerServiceImpl::SetCordoned(grpc::ServerContext* ctx, const v1::SetCordonedRequest* request,
                                                v1::SetCordonedResponse* response) {
  GANTRY_REQUIRE_API_SERVER(ctx);
  const std::string mine = config_.controller_id ? config_.controller_id() : "";
  if (mine.empty() || request->controller_id() != mine) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("controller_id: this controller is ", mine.empty() ? "not registered yet" : mine)));
  }
  fleet_->SetDraining(request->cordoned(), absl::Now());
  FleetSnapshot snap = fleet_->Snapshot();
  *response->mutable_capacity() = snap.capacity;
  *response->mutable_load() = snap.load;
  return grpc::Status::OK;
}

grpc::Status ControllerServiceImpl::HealthCheck(grpc::ServerContext* ctx,
                                                const v1::HealthCheckRequest*,
                                                v1::HealthCheckResponse* response) {
  GANTRY_REQUIRE_API_SERVER(ctx);
  FleetSnapshot snap = fleet_->Snapshot();
  bool healthy = snap.capacity.workers_online() > 0;
  response->set_status(healthy ? "healthy" : "unhealthy");
  response->set_message(healthy ? "" : "no worker connected");
  response->set_current_sessions(snap.load.active_sessions());
  *response->mutable_load() = snap.load;
  *response->mutable_capacity() = snap.capacity;
  return grpc::Status::OK;
}

grpc::Status ControllerServiceImpl::ListWorkers(grpc::ServerContext* ctx,
                                                const v1::ListWorkersRequest*,
                                                v1::ListWorkersResponse* response) {
  GANTRY_REQUIRE_API_SERVER(ctx);
  for (auto& w : fleet_->Workers()) *response->add_workers() = std::move(w);
  return grpc::Status::OK;
}

}  // namespace gantry::controller
