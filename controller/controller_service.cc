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

grpc::Status ControllerServiceImpl::StreamLogs(grpc::ServerContext* ctx,
                                               const v1::ControllerStreamLogsRequest* request,
                                               grpc::ServerWriter<v1::LogEntry>* writer) {
  NoteSession(request->session_id());
  GANTRY_REQUIRE_API_SERVER(ctx);
  if (absl::Status s = CheckSessionId(request->session_id()); !s.ok()) return ToGrpcStatus(s);
  if (request->tail_lines() < 0) {
    return ToGrpcStatus(absl::InvalidArgumentError("tail_lines: must not be negative"));
  }
  auto source = fleet_->LogSource(request->session_id(), request->worker_id());
  if (!source.ok()) return ToGrpcStatus(source.status());
  const std::string stream_id = logs_->Open(source->first);
  auto send = [&](const v1::ControllerMessage& m) { return source->second->Send(m); };
  auto cancel_upstream = [&] {
    v1::ControllerMessage cancel;
    cancel.mutable_cancel_logs()->set_stream_id(stream_id);
    send(cancel);
    logs_->Close(stream_id);
  };
  v1::ControllerMessage start;
  auto* cmd = start.mutable_stream_logs();
  cmd->set_stream_id(stream_id);
  cmd->set_session_id(request->session_id());
  cmd->set_tail_lines(request->tail_lines());
  cmd->set_follow(request->follow());
  cmd->set_credit(logs_->window());
  if (!send(start)) {
    logs_->Close(stream_id);
    return ToGrpcStatus(absl::UnavailableError("the session's worker disconnected"));
  }
  while (true) {
    if (ctx->IsCancelled()) {
      cancel_upstream();
      return grpc::Status::CANCELLED;
    }
    auto next = logs_->Next(stream_id, absl::Milliseconds(200));
    if (!next.ok()) {
      logs_->Close(stream_id);
      return ToGrpcStatus(next.status());
    }
    if (!next->has_value()) continue;  // Nothing yet; look at the caller again.
    const v1::WorkerLogLines& batch = **next;
    for (const auto& entry : batch.entries()) {
      // Blocks while the caller is slow: that is the backpressure.
      if (!writer->Write(entry)) {
        cancel_upstream();
        return grpc::Status::CANCELLED;
      }
    }
    if (batch.end()) {
      logs_->Close(stream_id);
      if (batch.error_code() != 0) {
        return grpc::Status(static_cast<grpc::StatusCode>(batch.error_code()), batch.error_message());
      }
      return grpc::Status::OK;
    }
    v1::ControllerMessage credit;
    credit.mutable_log_credit()->set_stream_id(stream_id);
    credit.mutable_log_credit()->set_credit(1);
    send(credit);
  }
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
