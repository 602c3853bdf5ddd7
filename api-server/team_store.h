// AdminService's teams and quotas: who is in which team, and each team's limits with what it
// holds now. Validates each request (naming the field) before anything is written. The limits
// are enforced where GPUs are reserved (SessionStore, TeamCharges), not here.
// Thread-safe; blocking (see SessionStore).
#pragma once

#include "absl/status/statusor.h"
#include "gantry/v1/admin_service.pb.h"

namespace gantry {
class PgPool;
}

namespace gantry::api {

class TeamStore {
 public:
  explicit TeamStore(PgPool* pool) : pool_(pool) {}

  absl::Status SetPrincipalTeam(const v1::SetPrincipalTeamRequest& request);
  absl::StatusOr<v1::ListTeamsResponse> ListTeams();
  absl::StatusOr<v1::Quota> SetQuota(const v1::SetQuotaRequest& request);
  absl::StatusOr<v1::Quota> GetQuota(const std::string& team);  // NOT_FOUND
  absl::StatusOr<v1::ListQuotasResponse> ListQuotas();
  absl::Status DeleteQuota(const std::string& team);  // NOT_FOUND

 private:
  PgPool* pool_;
};

// A principal as certificates and API keys name it: "user/NAME" or "admin/NAME".
absl::Status ValidatePrincipal(const std::string& principal, const char* field);

}  // namespace gantry::api
