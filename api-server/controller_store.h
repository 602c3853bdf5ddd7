// Registered controllers and their tokens in PostgreSQL: registration, token checks,
// heartbeats and candidate selection. Thread-safe; blocking (see SessionStore).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/group_commit.h"
#include "gantry/v1/invoke_service.pb.h"
#include "gantry/v1/registry_service.pb.h"

namespace gantry {
class PgPool;
}

namespace gantry::api {

struct ControllerTarget {
  std::string id;
  std::string endpoint;
  std::string name;
};

// A controller serving a capability at `version`, with the invokes in flight its last
// heartbeat reported.
struct InvokeCandidateRow {
  ControllerTarget target;
  std::string version;
  int active_invokes = 0;
};

struct PlacementRequest {
  int gpu_count = 0;
  int64_t min_gpu_memory_bytes = 0;
  std::string gpu_model;  // Case-insensitive substring of the device name; "" = any.
  std::string controller_id;
  std::string controller_type;
  std::string selector_json = "{}";
  std::string skills_json = "[]";
};

struct FleetSummary {
  int selectable_controllers = 0;
  int max_free_gpus_per_worker = 0;
  int registered_controllers = 0;
  int64_t gpus_total = 0;     // On selectable controllers.
  int64_t gpus_reserved = 0;  // Of those, held by sessions.
};

// What a controller reports of itself as the fields of a JSON object (no braces): capacity and
// load as protobuf JSON, and the columns selection filters on. One row of the batched
// statements that store heartbeats and health checks.
std::string CapacityJsonFields(const v1::ControllerCapacity& capacity, const v1::ControllerLoad& load);
// One element of record_health_checks_ok.sql's array: controller `id` answered with these.
std::string AnsweredRowJson(const std::string& id, const v1::ControllerCapacity& capacity,
                            const v1::ControllerLoad& load);

// What storing a heartbeat found.
struct HeartbeatAnswer {
  bool cordoned = false;
  // Sessions the controller holds that PostgreSQL does not want there: unknown, ended, placed
  // on another controller, or not even a UUID. It is told to stop them.
  std::vector<std::string> unwanted;
  // Live sessions PostgreSQL has on the controller that its complete lists have left out for
  // longer than the grace: lost, for the caller to end.
  std::vector<std::string> lost;
};

class ControllerStore {
 public:
  ControllerStore(PgPool* pool, absl::Duration heartbeat_freshness)
      : pool_(pool),
        freshness_(heartbeat_freshness),
        heartbeats_([this](const std::vector<PendingHeartbeat*>& batch) { WriteHeartbeats(batch); }) {}

  // Inserts or updates the controller by name (keeping its id) and replaces its token hash.
  // Returns the id and the token's expiry.
  absl::StatusOr<std::pair<std::string, absl::Time>> Register(
      const v1::RegisterControllerRequest& request, const std::string& token_sha256,
      absl::Duration token_lifetime);

  // OK if `token` is the controller's live token (compared in constant time) and the controller
  // is the one named `caller_name`, the name in the caller's certificate. UNAUTHENTICATED for a
  // token that is not live, without saying which part was wrong; PERMISSION_DENIED, naming both,
  // for another controller's live token (a certificate cannot act as another controller).
  absl::Status VerifyToken(const std::string& controller_id, const std::string& token,
                           const std::string& caller_name);

  // Stores the heartbeat if it carries the controller's live token and comes from its
  // certificate (refused as VerifyToken otherwise) and reconciles the sessions it lists with PostgreSQL's: those it
  // holds that are not wanted there, and, where the list is complete, those it left out. A
  // session left out is noted; one left out of every heartbeat for `unheld_grace` is lost. One
  // changed within `recent` is never counted left out (the controller may have listed its
  // sessions before it came). Heartbeats that arrive while one is being written are written
  // together next, in one statement and one commit: at thousands of controllers, round trips
  // and commits of their own would queue behind the database (docs/PERFORMANCE.md).
  // A heartbeat still queued behind another write at `deadline` (its caller's) leaves the queue
  // and is UNAVAILABLE; one already in the write being made waits for it (bounded by the pool).
  absl::StatusOr<HeartbeatAnswer> Heartbeat(const v1::HeartbeatRequest& request, const std::string& caller_name,
                                            absl::Duration unheld_grace, absl::Duration recent,
                                            absl::Time deadline = absl::InfiniteFuture());
  absl::Status MarkOffline(const std::string& controller_id);

  // Controllers that could take the placement, best first (least loaded, then round-robin).
  absl::StatusOr<std::vector<ControllerTarget>> Candidates(const PlacementRequest& request,
                                                           int limit);
  // Controllers whose workers serve `capability`, one row per version each serves, best first
  // (least busy, then least recently chosen). InvokeCandidateCache matches versions.
  absl::StatusOr<std::vector<InvokeCandidateRow>> InvokeCandidateRows(const std::string& capability);
  // The capabilities whose names start with `prefix` that selectable controllers serve, by name.
  absl::StatusOr<std::vector<v1::ServedCapability>> ServedCapabilities(const std::string& prefix);
  absl::StatusOr<FleetSummary> Summary();
  absl::StatusOr<ControllerTarget> Get(const std::string& controller_id);

 private:
  struct PendingHeartbeat;
  // Writes `batch` in one statement and completes each of its heartbeats.
  void WriteHeartbeats(const std::vector<PendingHeartbeat*>& batch);

  PgPool* pool_;
  absl::Duration freshness_;
  GroupCommit<PendingHeartbeat> heartbeats_;  // One queue, for every controller's heartbeats.
};

}  // namespace gantry::api
