// The AdminService use cases: API keys, controller inspection, cordon/delete (drain is
// ControllerDrainer's), token
// rotation, the worker fan-out and the cluster summary. Plain domain logic; the caller has
// already been checked for the admin role. Thread-safe; blocking.
#pragma once

#include "absl/status/statusor.h"
#include "api-server/admin_store.h"
#include "api-server/controller_client.h"
#include "api-server/template_store.h"
#include "gantry/v1/admin_service.pb.h"

namespace gantry::api {

class AdminManager {
 public:
  AdminManager(AdminStore* store, ControllerClient* client, TemplateStore* templates,
               absl::Duration token_lifetime = absl::Hours(24 * 30), absl::Duration rotation_grace = absl::Seconds(30))
      : store_(store),
        client_(client),
        templates_(templates),
        token_lifetime_(token_lifetime),
        rotation_grace_(rotation_grace) {}

  absl::StatusOr<v1::CreateApiKeyResponse> CreateApiKey(const v1::CreateApiKeyRequest& request);
  absl::Status RevokeApiKey(const v1::RevokeApiKeyRequest& request);
  absl::StatusOr<v1::ListControllersResponse> ListControllers(const v1::ListControllersRequest& request);
  absl::StatusOr<v1::Controller> GetController(const std::string& id);
  absl::StatusOr<v1::Controller> SetCordoned(const std::string& id, bool cordoned);
  absl::Status DeleteController(const std::string& id);
  absl::StatusOr<v1::RotateControllerTokenResponse> RotateToken(const std::string& id);
  absl::StatusOr<v1::ListWorkersResponse> ListWorkers(const v1::ListWorkersRequest& request);
  absl::StatusOr<v1::ClusterStatus> ClusterStatus();
  absl::StatusOr<v1::SessionTemplate> CreateTemplate(const v1::CreateTemplateRequest& request);
  absl::StatusOr<v1::ListTemplatesResponse> ListTemplates();
  absl::Status DeleteTemplate(const std::string& id);

 private:
  AdminStore* store_;
  ControllerClient* client_;
  TemplateStore* templates_;
  absl::Duration token_lifetime_;
  absl::Duration rotation_grace_;  // How long a rotated-away token still works.
};

}  // namespace gantry::api
