// Preemption's use cases: for a create (or a queued session) of a higher priority that does not
// fit, find the best plan anywhere (PlanPreemption over PreemptionStore's candidates), carry it
// out on its controller (planned again there under the lock; the next plan if that one no
// longer holds), and stop the victims through the normal stop path on a small pool of its own,
// so the create answers at once. The preemptor waits PENDING, nominated to the victims'
// controller, and QueueDispatcher places it once they have stopped.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "api-server/controller_client.h"
#include "api-server/controller_store.h"
#include "api-server/preemption_store.h"
#include "api-server/session_store.h"
#include "common/work_pool.h"

namespace gantry::api {

class Preemptor {
 public:
  // `stop_threads`: victims stopped at once (each blocks for its grace at most).
  Preemptor(PreemptionStore* store, SessionStore* sessions, ControllerStore* controllers, ControllerClient* client,
            int stop_threads = 8)
      : store_(store), sessions_(sessions), controllers_(controllers), client_(client), stopping_(stop_threads, 4096) {}

  // For a create that does not fit now: the preemptor, stored PENDING and nominated, or none
  // when no preemption would make room (then nothing is written). A quota that would refuse it
  // is that refusal (IsQuotaRefusal); ALREADY_EXISTS for a request_id its owner has used.
  absl::StatusOr<std::optional<v1::Session>> ForCreate(const PlacementRequest& placement, const QueuedCreate& create);
  // For a queued session QueueDispatcher could not place: whether it preempted for it (not when
  // its team's quota would refuse it).
  absl::StatusOr<bool> ForQueued(const PlacementRequest& placement, const v1::Session& queued, int32_t priority);
  // How many of the sessions preempted for `preemptor_id` are still stopping. Those whose stop
  // has gone unanswered for kStopResumeAfter (the replica stopping them died, say) are asked to
  // stop again.
  absl::StatusOr<int> VictimsStopping(const std::string& preemptor_id);

  // Called once a victim's stop is stored (its GPUs are free): QueueDispatcher::Wake, so its
  // preemptor is placed now rather than at the queue's next round. Any time (creates may be
  // preempting already).
  void set_on_victim_stopped(std::function<void()> stopped) {
    std::lock_guard<std::mutex> lock(mu_);
    on_victim_stopped_ = std::move(stopped);
  }

  // At shutdown: lets the stops in progress finish. Victims whose stop had not begun stay
  // TERMINATING; QueueDispatcher's leader asks again (VictimsStopping).
  void Stop() { stopping_.Stop(); }

 private:
  // Plans with the candidates now, then carries out with `carry(controller_id)`, up to
  // kAttempts plans. None when no plan makes room.
  template <typename Carry>
  absl::StatusOr<std::optional<Preemption>> Run(const PlacementRequest& placement, int32_t priority,
                                                const Carry& carry);
  void StopVictims(const std::vector<v1::Session>& victims);

  static constexpr int kAttempts = 3;
  // Longer than a stop takes (the controllers' --stop-grace, 10 s by default, and the call).
  static constexpr absl::Duration kStopResumeAfter = absl::Seconds(60);

  std::mutex mu_;
  std::function<void()> on_victim_stopped_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> stops_in_flight_ ABSL_GUARDED_BY(mu_);  // Not asked twice at once.

  PreemptionStore* const store_;
  SessionStore* const sessions_;
  ControllerStore* const controllers_;
  ControllerClient* const client_;
  WorkPool stopping_;  // Last: its threads use the members above.
};

}  // namespace gantry::api
