#include "api-server/queue_dispatcher.h"

#include <spdlog/spdlog.h>

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/json_util.h"
#include "common/metrics.h"

namespace gantry::api {

QueueDispatcher::QueueDispatcher(QueueDispatchConfig config, SessionStore* sessions, ControllerStore* controllers,
                                 SessionManager* manager, std::function<bool()> leading)
    : config_(config), sessions_(sessions), controllers_(controllers), manager_(manager), leading_(std::move(leading)) {}

QueueDispatcher::~QueueDispatcher() { Stop(); }

void QueueDispatcher::Start() { thread_ = std::thread([this] { Loop(); }); }

void QueueDispatcher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void QueueDispatcher::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, absl::ToChronoMilliseconds(config_.interval), [this] { return stopping_ || woken_; });
    if (stopping_) break;
    woken_ = false;
    lock.unlock();
    // A round that placed a whole batch may have left room for more: another at once.
    while (leading_() && RunOnce() >= config_.batch) {
    }
    lock.lock();
  }
}

void QueueDispatcher::Wake() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void QueueDispatcher::ExpireOverdue() {
  auto expired = sessions_->ExpiredQueued(config_.batch);
  if (!expired.ok()) return;
  for (const auto& [id, waited] : *expired) {
    PhaseChange failed;
    failed.phase = v1::SESSION_PHASE_FAILED;
    failed.only_from = v1::SESSION_PHASE_PENDING;
    failed.message = absl::StrCat("queued for ", absl::FormatDuration(absl::Trunc(waited, absl::Seconds(1))),
                                  ", past its queue_timeout, and never found room");
    if (sessions_->Transition(id, failed).ok()) {
      Metrics::Global().CounterAdd("gantry_queue_timeouts_total", "Queued sessions FAILED at their queue_timeout", {});
    }
  }
}

int QueueDispatcher::RunOnce() {
  ExpireOverdue();
  auto queued = sessions_->Queued(config_.batch, config_.fair_share_window);
  if (!queued.ok()) {
    spdlog::warn("queue: cannot read the queued sessions: {}", queued.status().ToString());
    return 0;
  }
  int placed = 0;
  std::optional<int32_t> blocked_below;  // A session of this priority found no room.
  for (const SessionStore::QueuedSession& q : *queued) {
    if (blocked_below.has_value() && q.priority < *blocked_below) break;  // In priority order: all the rest.
    v1::CreateSessionRequest request;
    if (!FromJson(q.placement_json, &request).ok()) continue;  // Written by Enqueue: cannot happen.
    *request.mutable_spec() = q.session.spec();
    const PlacementRequest placement = PlacementFor(request);
    bool done = false;
    if (!q.nominated_controller_id.empty()) {
      // Its preemption made room there: once its victims have stopped, the room is its own
      // (no other session may take it), whatever the controller's last heartbeat said.
      auto stopping = preemptor_ != nullptr ? preemptor_->VictimsStopping(q.session.id()) : absl::StatusOr<int>(0);
      if (!stopping.ok() || *stopping > 0) {
        blocked_below = q.priority;
        continue;
      }
      auto nominated = controllers_->Get(q.nominated_controller_id);
      if (nominated.ok()) {
        auto scheduled = sessions_->ScheduleQueued(
            q.session, Reservation{nominated->id, absl::StrCat("placing on controller ", nominated->name,
                                                               ", where its preemption made room")});
        if (scheduled.ok()) {
          ++placed;
          manager_->StartQueued(*scheduled, *nominated, {});
          continue;
        }
      }
    }
    auto candidates = controllers_->Candidates(placement, config_.max_attempts);
    for (size_t i = 0; candidates.ok() && i < candidates->size() && !done; ++i) {
      const ControllerTarget& target = (*candidates)[i];
      auto scheduled = sessions_->ScheduleQueued(
          q.session, Reservation{target.id, absl::StrCat("placing on controller ", target.name, " from the queue")});
      if (scheduled.ok()) {
        ++placed;
        done = true;
        std::vector<ControllerTarget> others(candidates->begin() + static_cast<std::ptrdiff_t>(i) + 1,
                                             candidates->end());
        manager_->StartQueued(*scheduled, target, std::move(others));
      } else if (scheduled.status().code() != absl::StatusCode::kResourceExhausted) {
        done = true;  // No longer queued (deleted, expired, placed elsewhere), or the database: next round.
      }
    }
    if (done) continue;
    // The first that finds no room may preempt sessions of lower priority for it (once: the
    // sessions below it wait this round anyway).
    if (preemptor_ != nullptr && !blocked_below.has_value()) {
      auto preempted = preemptor_->ForQueued(placement, q.session, q.priority);
      if (!preempted.ok()) spdlog::warn("queue: preempting for {}: {}", q.session.id(), preempted.status().ToString());
    }
    blocked_below = q.priority;
  }
  if (placed > 0) {
    Metrics::Global().CounterAdd("gantry_queue_placed_total", "Queued sessions placed as room freed", {},
                                 static_cast<double>(placed));
  }
  return placed;
}

}  // namespace gantry::api
