#include "api-server/admin_manager.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "api-server/request_validation.h"
#include "common/identity.h"
#include "common/status.h"
#include "common/tokens.h"

namespace gantry::api {
namespace {

constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;
constexpr absl::Duration kFanOutTimeout = absl::Seconds(3);

}  // namespace

absl::StatusOr<v1::CreateApiKeyResponse> AdminManager::CreateApiKey(
    const v1::CreateApiKeyRequest& request) {
  if (request.role() != "user" && request.role() != "admin") {
    return absl::InvalidArgumentError("role: must be \"user\" or \"admin\"");
  }
  if (!IsValidName(request.principal())) {
    return absl::InvalidArgumentError(
        "principal: 1..63 of [a-z0-9._-], starting with a letter or digit (e.g. \"alice\")");
  }
  if (!request.team().empty() && !IsValidName(request.team())) {
    return absl::InvalidArgumentError("team: 1..63 of [a-z0-9._-] starting with a letter or digit, or unset");
  }
  int64_t expiry = 0;
  if (request.has_expire_time()) {
    expiry = request.expire_time().seconds();
    if (expiry <= absl::ToUnixSeconds(absl::Now())) {
      return absl::InvalidArgumentError("expire_time: must be in the future");
    }
  }
  v1::CreateApiKeyResponse response;
  response.set_key_id(absl::StrCat("key-", RandomToken(9)));
  // The id is part of the key so a leaked key can be traced to its record and revoked.
  response.set_api_key(absl::StrCat("gantry_", response.key_id(), "_", RandomToken(32)));
  RETURN_IF_ERROR(store_->InsertApiKey(response.key_id(), Sha256Hex(response.api_key()),
                                       absl::StrCat(request.role(), "/", request.principal()),
                                       request.role(), expiry, request.team()));
  spdlog::info("API key {} created for {}/{}", response.key_id(), request.role(), request.principal());
  return response;
}

absl::Status AdminManager::RevokeApiKey(const v1::RevokeApiKeyRequest& request) {
  if (request.key_id().empty() || request.key_id().size() > 64) {
    return absl::InvalidArgumentError("key_id: required, as returned by CreateApiKey");
  }
  RETURN_IF_ERROR(store_->RevokeApiKey(request.key_id()));
  spdlog::info("API key {} revoked", request.key_id());
  return absl::OkStatus();
}

absl::StatusOr<v1::ListControllersResponse> AdminManager::ListControllers(
    const v1::ListControllersRequest& request) {
  if (request.page_size() < 0 || request.page_size() > kMaxPageSize) {
    return absl::InvalidArgumentError(absl::StrCat("page_size: must be 0..", kMaxPageSize));
  }
  if (!request.page_token().empty() && !IsValidName(request.page_token())) {
    return absl::InvalidArgumentError("page_token: malformed; pass next_page_token unchanged");
  }
  if (!v1::ControllerStatus_IsValid(request.status())) {
    return absl::InvalidArgumentError("status: not a ControllerStatus");
  }
  std::string status;
  switch (request.status()) {
    case v1::CONTROLLER_STATUS_HEALTHY: status = "healthy"; break;
    case v1::CONTROLLER_STATUS_UNHEALTHY: status = "unhealthy"; break;
    case v1::CONTROLLER_STATUS_OFFLINE: status = "offline"; break;
    default: break;
  }
  int size = request.page_size() == 0 ? kDefaultPageSize : request.page_size();
  ASSIGN_OR_RETURN(auto controllers, store_->ListControllers(status, request.page_token(), size + 1));
  v1::ListControllersResponse response;
  for (int i = 0; i < static_cast<int>(controllers.size()) && i < size; ++i) {
    *response.add_controllers() = std::move(controllers[i]);
  }
  if (static_cast<int>(controllers.size()) > size) {
    response.set_next_page_token(response.controllers(size - 1).name());
  }
  return response;
}

absl::StatusOr<v1::Controller> AdminManager::GetController(const std::string& id) {
  return store_->GetController(id);
}

absl::StatusOr<v1::Controller> AdminManager::SetCordoned(const std::string& id, bool cordoned) {
  RETURN_IF_ERROR(store_->SetCordoned(id, cordoned));
  ASSIGN_OR_RETURN(v1::Controller controller, store_->GetController(id));
  // Best effort: a controller not told now learns it from its next heartbeat's answer. One told
  // answers with what it holds now, stored before the call returns: after a drain, the GPUs
  // its stops freed are placeable at once, not after its next heartbeat.
  auto told = client_->TellCordoned(controller.endpoint(), controller.id(), cordoned);
  if (told.ok()) {
    absl::Status stored = store_->RecordAnswered(controller.id(), told->capacity(), told->load());
    if (!stored.ok()) spdlog::warn("controller {}: its capacity is stored at its next heartbeat ({})", id, stored.ToString());
  }
  spdlog::info("controller {} ({}) {}{}", controller.name(), id, cordoned ? "cordoned" : "uncordoned",
               told.ok() ? "" : "; it learns so from its next heartbeat (not reachable now)");
  return controller;
}

absl::Status AdminManager::DeleteController(const std::string& id) {
  ASSIGN_OR_RETURN(v1::Controller controller, store_->GetController(id));
  ASSIGN_OR_RETURN(int remaining, store_->LiveSessionsOn(id));
  if (remaining > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "controller ", controller.name(), " still has ", remaining,
        " live session(s): drain it (DrainController) and delete them first"));
  }
  RETURN_IF_ERROR(store_->DeleteController(id));
  spdlog::info("controller {} ({}) deleted", controller.name(), id);
  return absl::OkStatus();
}

absl::StatusOr<v1::RotateControllerTokenResponse> AdminManager::RotateToken(const std::string& id) {
  ASSIGN_OR_RETURN(v1::Controller controller, store_->GetController(id));
  std::string token = RandomToken(32);
  ASSIGN_OR_RETURN(absl::Time expiry, store_->ReplaceToken(id, Sha256Hex(token), token_lifetime_, rotation_grace_));
  const absl::Time previous_expiry = absl::Now() + rotation_grace_;
  // Handed over in memory, over mTLS, to the controller's own endpoint: it is never stored but
  // as its hash. A controller that cannot be reached now registers again with the join token
  // once the old one stops working, as it did before rotation could be handed over.
  absl::Status handed = client_->HandOverToken(controller.endpoint(), controller.id(), token);
  if (handed.ok()) {
    spdlog::info("controller {} token rotated and handed over; the previous one works until {}", controller.name(),
                 absl::FormatTime(previous_expiry));
  } else {
    spdlog::warn("controller {} token rotated, but not handed over ({}); the previous one works until {}",
                 controller.name(), handed.ToString(), absl::FormatTime(previous_expiry));
  }
  v1::RotateControllerTokenResponse response;
  response.set_controller_token(token);
  response.mutable_expire_time()->set_seconds(absl::ToUnixSeconds(expiry));
  response.set_delivered(handed.ok());
  response.mutable_previous_expire_time()->set_seconds(absl::ToUnixSeconds(previous_expiry));
  return response;
}

absl::StatusOr<v1::ListWorkersResponse> AdminManager::ListWorkers(const v1::ListWorkersRequest& request) {
  if (!request.controller_id().empty()) {
    ASSIGN_OR_RETURN(v1::Controller unused, store_->GetController(request.controller_id()));
  }
  ASSIGN_OR_RETURN(auto targets, store_->Reachable(request.controller_id()));
  v1::ListWorkersResponse response;
  // One controller at a time, each bounded; the fleet sizes this serves (tens of nodes per
  // replica) do not need a parallel fan-out yet.
  for (const auto& target : targets) {
    auto listed = client_->ListWorkers(target.endpoint, kFanOutTimeout);
    if (!listed.ok()) {
      response.add_unreachable_controllers(target.id);
      continue;
    }
    for (auto& worker : *listed->mutable_workers()) {
      worker.set_controller_id(target.id);
      *response.add_workers() = std::move(worker);
    }
  }
  return response;
}

absl::StatusOr<v1::ClusterStatus> AdminManager::ClusterStatus() { return store_->ClusterStatus(); }

absl::StatusOr<v1::SessionTemplate> AdminManager::CreateTemplate(const v1::CreateTemplateRequest& request) {
  const v1::SessionTemplate& t = request.session_template();
  if (!IsValidName(t.id())) {
    return absl::InvalidArgumentError("session_template.id: 1..63 of [a-z0-9._-], starting with a letter or digit");
  }
  if (t.description().size() > 1024) {
    return absl::InvalidArgumentError("session_template.description: at most 1024 bytes");
  }
  if (t.preferred_controller_type().size() > 63) {
    return absl::InvalidArgumentError("session_template.preferred_controller_type: at most 63 bytes");
  }
  absl::Status valid = ValidateSessionSpec(t.spec());
  if (!valid.ok()) return Annotate(valid, "session_template");
  ASSIGN_OR_RETURN(v1::SessionTemplate created, templates_->Create(t));
  spdlog::info("template {} created", t.id());
  return created;
}

absl::StatusOr<v1::ListTemplatesResponse> AdminManager::ListTemplates() {
  ASSIGN_OR_RETURN(auto all, templates_->List());
  v1::ListTemplatesResponse response;
  for (auto& t : all) *response.add_templates() = std::move(t);
  return response;
}

absl::Status AdminManager::DeleteTemplate(const std::string& id) {
  if (!IsValidName(id)) return absl::InvalidArgumentError("id: not a template id");
  return templates_->Delete(id);
}

}  // namespace gantry::api
