// Preemption in PostgreSQL: the candidates a create could displace, and carrying a plan out in
// one transaction under the controller's reservation lock, so that two replicas never both
// count the same victims' GPUs for two preemptors, and the room made is kept for the one it was
// made for (nominated_controller_id, migration 0014).
//
// Thread-safe (each call takes its own pooled connection). Blocking.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "api-server/controller_store.h"  // PlacementRequest
#include "api-server/preemption_plan.h"
#include "gantry/v1/session_service.pb.h"

namespace gantry {
class PgPool;
}

namespace gantry::api {

// A create that preempts, stored queued (PENDING) until its victims' GPUs are free.
struct QueuedCreate {
  std::string owner;
  std::string request_id;
  std::string template_id;
  v1::SessionSpec spec;
  int32_t priority = 0;
  absl::Duration queue_timeout;
  std::string placement_json;  // As SessionStore::Enqueue takes it.
};

struct Preemption {
  v1::Session preemptor;             // PENDING, nominated to the victims' controller.
  std::vector<v1::Session> victims;  // TERMINATING; each still to be stopped on its controller.
};

class PreemptionStore {
 public:
  // `freshness`: how recent a controller's heartbeat must be (ControllerStore's).
  PreemptionStore(PgPool* pool, absl::Duration freshness) : pool_(pool), freshness_(freshness) {}

  // Sessions a create of `priority` placed by `placement` may preempt, anywhere
  // (select_preemption_candidates.sql), at most `limit`.
  absl::StatusOr<std::vector<PreemptionCandidate>> Candidates(const PlacementRequest& placement, int32_t priority,
                                                              int limit = 1000);

  // Carries out a preemption on `controller_id` for a new create: under the controller's lock,
  // plans again from the candidates there now, stores `create` queued and nominated there, and
  // moves the victims to TERMINATING with a "Preempted" condition naming it.
  // RESOURCE_EXHAUSTED, nothing written, when no plan makes room there any more or the team's
  // quota would refuse it (IsQuotaRefusal); ALREADY_EXISTS for a request_id its owner has used.
  absl::StatusOr<Preemption> PreemptForCreate(const PlacementRequest& placement, const std::string& controller_id,
                                              const QueuedCreate& create);
  // The same for a session queued already (nominated there now). FAILED_PRECONDITION when it
  // is no longer queued.
  absl::StatusOr<Preemption> PreemptForQueued(const PlacementRequest& placement, const std::string& controller_id,
                                              const v1::Session& queued, int32_t priority);

  // The sessions preempted for `preemptor_id` that have not ended yet; `stale`: those whose
  // stop has gone unanswered for `stale_after`.
  struct Stopping {
    int count = 0;
    std::vector<v1::Session> stale;
  };
  absl::StatusOr<Stopping> VictimsStopping(const std::string& preemptor_id, absl::Duration stale_after);

 private:
  // What PreemptFor* share: the locks, `owner`'s team's quota (checked as if placed: nothing is
  // preempted for a session its quota would refuse), the plan, `place` (stores the preemptor,
  // nominated to the controller, with the message and the team it is given), the victims.
  template <typename Place>
  absl::StatusOr<Preemption> Preempt(const PlacementRequest& placement, const std::string& controller_id,
                                     const std::string& owner, int32_t priority, const Place& place);

  PgPool* const pool_;
  const absl::Duration freshness_;
};

}  // namespace gantry::api
