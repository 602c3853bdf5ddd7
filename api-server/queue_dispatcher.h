// Places queued sessions (CreateSessionRequest.queue) as room frees, and fails those whose
// queue_timeout has passed. Runs where health checks are led (one replica at a time; were two
// to run it for a moment, a session is placed once: ScheduleQueued places only a session still
// queued, under its controller's reservation lock and its team's).
//
// A round every `interval`, and another at once after a round that placed a whole batch. Each
// round: the expired become FAILED, saying how long they waited; then the queued, in
// order (priority, the team's recent GPU-seconds, age), each offered to the controllers that
// could take it now, as a create is. Once a session of some priority finds no room, sessions of
// lower priority wait this round: they would take the room it waits for. Others of the same
// priority may still fit (smaller ones go by a large one). A placed session is started as an
// acknowledged create's is (SessionManager::StartQueued). A session its preemption nominated to
// a controller waits until its victims have stopped, then is placed there first. The first
// session of a round that finds no room may preempt for itself (Preemptor::ForQueued).
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/time/time.h"
#include "api-server/controller_store.h"
#include "api-server/preemptor.h"
#include "api-server/session_manager.h"
#include "api-server/session_store.h"

namespace gantry::api {

struct QueueDispatchConfig {
  absl::Duration interval = absl::Seconds(1);
  // The window over which a team's GPU-seconds order it among equals.
  absl::Duration fair_share_window = kFairShareWindow;
  int batch = 64;         // Queued sessions looked at per round.
  int max_attempts = 3;   // Controllers offered each one.
};

class QueueDispatcher {
 public:
  // `leading`: whether this replica leads health checks now (rounds run only then).
  QueueDispatcher(QueueDispatchConfig config, SessionStore* sessions, ControllerStore* controllers,
                  SessionManager* manager, std::function<bool()> leading);
  ~QueueDispatcher();

  void Start();
  void Stop();
  // One round, now: how many were placed.
  int RunOnce();
  // The next round now, not at the interval (room has just been made: a preemption's victim
  // stopped). Any thread.
  void Wake();
  // Where a queued session that finds no room looks for sessions to preempt (and how it learns
  // its victims have stopped). Unset: nothing is preempted.
  void set_preemptor(Preemptor* preemptor) { preemptor_ = preemptor; }

 private:
  void Loop();
  void ExpireOverdue();

  const QueueDispatchConfig config_;
  SessionStore* const sessions_;
  ControllerStore* const controllers_;
  SessionManager* const manager_;
  const std::function<bool()> leading_;
  Preemptor* preemptor_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool woken_ = false;
  std::thread thread_;
};

}  // namespace gantry::api
