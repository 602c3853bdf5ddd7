#include "api-server/registry_manager.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/session_phase.h"
#include "common/status.h"
#include "common/tokens.h"

namespace gantry::api {
namespace {

absl::Status ValidateRegistration(const v1::RegisterControllerRequest& r) {
  if (r.type().empty() || r.type().size() > 63) {
    return absl::InvalidArgumentError("type: required, at most 63 bytes (e.g. \"gpu-node\")");
  }
  if (r.endpoint().empty() || r.endpoint().size() > 255 ||
      r.endpoint().find(':') == std::string::npos) {
    return absl::InvalidArgumentError("endpoint: required as host:port, at most 255 bytes");
  }
  if (r.labels_size() > 32) return absl::InvalidArgumentError("labels: at most 32 entries");
  for (const auto& [k, v] : r.labels()) {
    if (k.empty() || k.size() > 63 || v.size() > 256) {
      return absl::InvalidArgumentError("labels: keys 1..63 bytes, values at most 256 bytes");
    }
  }
  if (r.skills_size() > 1024 || r.capabilities_size() > 1024) {
    return absl::InvalidArgumentError("skills/capabilities: at most 1024 each");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::RegisterControllerResponse> RegistryManager::Register(const Identity& caller,
                                                                         const std::string& caller_key_sha256,
                                                                         const v1::RegisterControllerRequest& request) {
  if (request.name() != caller.name) {
    return absl::PermissionDeniedError(absl::StrCat(
        "name: \"", request.name().substr(0, 63), "\" does not match the certificate's controller name \"",
        caller.name, "\""));
  }
  RETURN_IF_ERROR(enrollment_->AdmitRegistration(caller.name, request.join_token(), caller_key_sha256));
  RETURN_IF_ERROR(ValidateRegistration(request));
  std::string token = RandomToken(32);
  ASSIGN_OR_RETURN(auto registered,
                   controllers_->Register(request, Sha256Hex(token), config_.token_lifetime));
  spdlog::info("controller {} registered as {} at {}", request.name(), registered.first,
               request.endpoint());
  v1::RegisterControllerResponse response;
  response.set_controller_id(registered.first);
  response.set_controller_token(token);
  response.mutable_token_expire_time()->set_seconds(absl::ToUnixSeconds(registered.second));
  response.set_heartbeat_interval_ms(
      static_cast<int32_t>(absl::ToInt64Milliseconds(config_.heartbeat_interval)));
  return response;
}

constexpr int kMaxHeldSessions = 100000;

absl::StatusOr<v1::HeartbeatResponse> RegistryManager::Heartbeat(const Identity& caller,
                                                                 const v1::HeartbeatRequest& request,
                                                                 absl::Time deadline) {
  if (request.session_ids_size() > kMaxHeldSessions) {
    return absl::InvalidArgumentError(absl::StrCat("session_ids: at most ", kMaxHeldSessions));
  }
  // One statement checks the token, stores the heartbeat and reconciles the sessions it lists:
  // the full reconciliation, so a process whose session PostgreSQL has given up on (or never
  // knew) is stopped, and a session whose process is gone is ended, however the events about
  // it were lost. A session placed after the controller took this heartbeat's snapshot is not
  // in it: one changed within a heartbeat interval is not counted missing.
  ASSIGN_OR_RETURN(HeartbeatAnswer answer, controllers_->Heartbeat(request, caller.name, config_.unheld_session_grace,
                                                                   config_.heartbeat_interval, deadline));
  v1::HeartbeatResponse response;
  response.set_cordoned(answer.cordoned);
  EndLostSessions(request.controller_id(), answer.lost);
  for (auto& id : answer.unwanted) {
    spdlog::warn("controller {} holds session {}, which PostgreSQL does not want there: stopping it",
                 request.controller_id(), id.substr(0, 64));
    response.add_sessions_to_stop(std::move(id));
  }
  return response;
}

void RegistryManager::EndLostSessions(const std::string& controller_id, const std::vector<std::string>& lost) {
  if (lost.empty()) return;
  const std::string why = absl::StrCat("not held by its controller for ", absl::FormatDuration(config_.unheld_session_grace),
                                       " (absent from its heartbeats); stopped if it ever reappears");
  for (const auto& id : lost) {
    auto session = sessions_->Get(id);
    if (!session.ok()) continue;
    PhaseChange ended;
    ended.only_from = session->phase();  // One that changed meanwhile is looked at again.
    if (session->phase() == v1::SESSION_PHASE_TERMINATING) {
      ended.phase = v1::SESSION_PHASE_TERMINATED;  // Being deleted anyway.
      ended.message = why;
    } else {
      ended.phase = v1::SESSION_PHASE_FAILED;
      ended.message = absl::StrCat("lost: ", why);
    }
    if (sessions_->Transition(id, ended).ok()) {
      spdlog::warn("session {} on controller {} lost: {}", id, controller_id, why);
    }
  }
}

absl::Status RegistryManager::Deregister(const Identity& caller, const v1::DeregisterRequest& request) {
  RETURN_IF_ERROR(controllers_->VerifyToken(request.controller_id(), request.controller_token(), caller.name));
  spdlog::info("controller {} deregistered", request.controller_id());
  return controllers_->MarkOffline(request.controller_id());
}

ReportVerdict JudgeControllerReport(const std::string& controller_id, const v1::Session& stored,
                                    const ReportedChange& reported) {
  // A controller may only report on sessions placed on it.
  if (stored.controller_id() != controller_id) {
    spdlog::warn("controller {} reported session {} which belongs to controller {}", controller_id, stored.id(),
                 stored.controller_id());
    return ReportVerdict::kIgnore;
  }
  const v1::SessionPhase phase = reported.change.phase;
  // Ended here (deleted, or failed by the API server): a process still running is unwanted.
  if (IsTerminal(stored.phase())) return IsTerminal(phase) ? ReportVerdict::kIgnore : ReportVerdict::kStop;
  // A deletion in progress wins over a late "running" report.
  if (stored.phase() == v1::SESSION_PHASE_TERMINATING && !IsTerminal(phase)) return ReportVerdict::kIgnore;
  // The same phase again (a controller re-reporting a session it was asked to start twice).
  if (!IsLegalTransition(stored.phase(), phase) || stored.phase() == phase) return ReportVerdict::kIgnore;
  return ReportVerdict::kApply;
}

absl::StatusOr<v1::ReportSessionEventsResponse> RegistryManager::ReportSessionEvents(
    const Identity& caller, const v1::ReportSessionEventsRequest& request) {
  RETURN_IF_ERROR(controllers_->VerifyToken(request.controller_id(), request.controller_token(), caller.name));
  if (request.events_size() > 1000) {
    return absl::InvalidArgumentError("events: at most 1000 per call");
  }
  if (request.stream_id().size() > 64) return absl::InvalidArgumentError("stream_id: at most 64 bytes");
  std::vector<ReportedChange> changes;
  changes.reserve(static_cast<size_t>(request.events_size()));
  uint64_t previous = 0;
  for (const auto& event : request.events()) {
    if (!request.stream_id().empty() && event.sequence() <= previous) {
      return absl::InvalidArgumentError(absl::StrCat("events.sequence: ", event.sequence(), " after ", previous,
                                                     "; a stream's events are numbered 1, 2, 3, ... in order"));
    }
    previous = event.sequence();
    ReportedChange& reported = changes.emplace_back();
    reported.session_id = event.session_id();
    reported.sequence = event.sequence();
    reported.change.phase = event.phase();
    reported.change.message = event.message();
    reported.change.worker_id = event.worker_id();
    reported.change.node_id = event.node_id();
    if (event.gpu_uuids_size() > 0) {
      reported.change.gpu_uuids = std::vector<std::string>(event.gpu_uuids().begin(), event.gpu_uuids().end());
    }
  }
  const std::string& controller_id = request.controller_id();
  auto judge = [&controller_id](const v1::Session& stored, const ReportedChange& reported) {
    return JudgeControllerReport(controller_id, stored, reported);
  };
  ASSIGN_OR_RETURN(AppliedReports applied, events_->Apply(controller_id, request.stream_id(), changes, judge));
  v1::ReportSessionEventsResponse response;
  response.set_applied_through(applied.applied_through);
  for (auto& id : applied.sessions_to_stop) response.add_sessions_to_stop(std::move(id));
  return response;
}

}  // namespace gantry::api
