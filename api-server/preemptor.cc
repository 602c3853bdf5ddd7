#include "api-server/preemptor.h"

#include <spdlog/spdlog.h>

#include "api-server/session_stop.h"
#include "api-server/team_quota.h"
#include "common/metrics.h"
#include "common/status.h"

namespace gantry::api {

template <typename Carry>
absl::StatusOr<std::optional<Preemption>> Preemptor::Run(const PlacementRequest& placement, int32_t priority,
                                                         const Carry& carry) {
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    ASSIGN_OR_RETURN(std::vector<PreemptionCandidate> candidates, store_->Candidates(placement, priority));
    const std::optional<PreemptionPlan> plan = PlanPreemption(placement.gpu_count, candidates);
    if (!plan) return std::optional<Preemption>();
    absl::StatusOr<Preemption> done = carry(plan->controller_id);
    // Taken meanwhile (another preemption, a create): plan again from what is there now.
    if (done.status().code() == absl::StatusCode::kResourceExhausted && !IsQuotaRefusal(done.status())) continue;
    if (!done.ok()) return done.status();
    for (const v1::Session& victim : done->victims) {
      Metrics::Global().CounterAdd("gantry_preemptions_total", "Sessions preempted, by their priority class",
                                   {{"priority_class", victim.spec().priority_class()}});
    }
    StopVictims(done->victims);
    return std::optional<Preemption>(*std::move(done));
  }
  return std::optional<Preemption>();
}

absl::StatusOr<std::optional<v1::Session>> Preemptor::ForCreate(const PlacementRequest& placement,
                                                               const QueuedCreate& create) {
  ASSIGN_OR_RETURN(std::optional<Preemption> done,
                   Run(placement, create.priority, [&](const std::string& controller_id) {
                     return store_->PreemptForCreate(placement, controller_id, create);
                   }));
  if (!done) return std::optional<v1::Session>();
  return std::optional<v1::Session>(std::move(done->preemptor));
}

absl::StatusOr<bool> Preemptor::ForQueued(const PlacementRequest& placement, const v1::Session& queued,
                                          int32_t priority) {
  absl::StatusOr<std::optional<Preemption>> done = Run(placement, priority, [&](const std::string& controller_id) {
    return store_->PreemptForQueued(placement, controller_id, queued, priority);
  });
  // Its team's quota would refuse it anyway: it waits for that, not for room (every round).
  if (IsQuotaRefusal(done.status())) return false;
  if (!done.ok()) return done.status();
  return done->has_value();
}

absl::StatusOr<int> Preemptor::VictimsStopping(const std::string& preemptor_id) {
  ASSIGN_OR_RETURN(PreemptionStore::Stopping stopping, store_->VictimsStopping(preemptor_id, kStopResumeAfter));
  StopVictims(stopping.stale);
  return stopping.count;
}

void Preemptor::StopVictims(const std::vector<v1::Session>& victims) {
  for (const v1::Session& victim : victims) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!stops_in_flight_.insert(victim.id()).second) continue;
    }
    auto stop = [this, victim] {
      auto stopped = StopOnController(sessions_, controllers_, client_, victim, victim.message());
      if (!stopped.ok()) {
        // TERMINATING and durable: VictimsStopping asks again later.
        spdlog::warn("preempted session {}: {}", victim.id(), stopped.status().ToString());
      }
      std::function<void()> stopped_hook;
      {
        std::lock_guard<std::mutex> lock(mu_);
        stops_in_flight_.erase(victim.id());
        if (stopped.ok()) stopped_hook = on_victim_stopped_;
      }
      if (stopped_hook) stopped_hook();
    };
    if (!stopping_.TrySubmit(stop)) stop();  // A full pool: this caller waits, which slows the burst.
  }
}

}  // namespace gantry::api
