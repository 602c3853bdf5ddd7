// The queries behind AdminService: API keys, controller listing and cordoning, cluster counts.
// Thread-safe; blocking (see SessionStore).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "api-server/controller_store.h"
#include "gantry/v1/admin_service.pb.h"

namespace gantry {
class PgPool;
}

namespace gantry::api {

class AdminStore {
 public:
  AdminStore(PgPool* pool, absl::Duration heartbeat_freshness)
      : pool_(pool), freshness_(heartbeat_freshness) {}

  // With `team` (or "": unchanged), the principal's team, in the same transaction.
  absl::Status InsertApiKey(const std::string& key_id, const std::string& key_sha256,
                            const std::string& principal, const std::string& role,
                            int64_t expire_epoch_seconds, const std::string& team);
  // NOT_FOUND if there is no such key.
  absl::Status RevokeApiKey(const std::string& key_id);

  // status: "" or healthy/unhealthy/offline; after_name: keyset cursor ("" = first page).
  absl::StatusOr<std::vector<v1::Controller>> ListControllers(const std::string& status,
                                                             const std::string& after_name,
                                                             int limit);
  absl::StatusOr<v1::Controller> GetController(const std::string& id);  // NOT_FOUND
  absl::Status SetCordoned(const std::string& id, bool cordoned);       // NOT_FOUND
  // Stores what controller `id` answered a call with, as a health check's answer is stored: it
  // was reachable, and holds this now.
  absl::Status RecordAnswered(const std::string& id, const v1::ControllerCapacity& capacity,
                              const v1::ControllerLoad& load);
  absl::StatusOr<int> LiveSessionsOn(const std::string& id);
  // Ids of the live sessions on controller `id`, oldest first, at most `limit`.
  absl::StatusOr<std::vector<std::string>> LiveSessionIdsOn(const std::string& id, int limit);
  absl::Status DeleteController(const std::string& id);  // NOT_FOUND
  // Returns the new token's expiry.
  // The new token's expiry; the previous one works for `grace` more.
  absl::StatusOr<absl::Time> ReplaceToken(const std::string& id, const std::string& token_sha256,
                                          absl::Duration lifetime, absl::Duration grace);
  absl::StatusOr<v1::ClusterStatus> ClusterStatus();
  // Controllers that are not offline ("" = all of them).
  absl::StatusOr<std::vector<ControllerTarget>> Reachable(const std::string& id);

 private:
  PgPool* pool_;
  absl::Duration freshness_;
};

}  // namespace gantry::api
