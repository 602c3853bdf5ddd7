// Keeps the sessions table, and the events of each session, from growing forever: ended
// sessions (TERMINATED or FAILED) are removed with their events once their end is older than
// the retention. Runs on the replica that leads the health checks, so one replica prunes at a
// time, in batches of a few hundred rows, each its own short statement that skips rows others
// hold: creates and updates never wait behind it. A session pruned is gone: GetSession answers
// NOT_FOUND, and its request_id may be used again.
#pragma once

#include <cstdint>
#include <functional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/periodic_task.h"

namespace gantry {
class PgPool;
}

namespace gantry::api {

struct SessionPruneConfig {
  absl::Duration retention = absl::Hours(7 * 24);
  int batch = 500;
  // One pass stops after this long, and goes on at the next.
  absl::Duration pass_budget = absl::Seconds(2);
};

class SessionPruner {
 public:
  // `leading`: whether this replica leads (HealthChecker::leading).
  SessionPruner(SessionPruneConfig config, PgPool* pool, std::function<bool()> leading);
  void Start();
  void Stop() { task_.Stop(); }
  // One pass, batch after batch until none is left or the budget is spent: sessions removed.
  absl::StatusOr<int64_t> PruneOnce();
  // Between passes: a quarter of the retention, between 1 s and a minute.
  absl::Duration interval() const;

 private:
  void Pass();

  const SessionPruneConfig config_;
  PgPool* const pool_;
  const std::function<bool()> leading_;
  PeriodicTask task_;  // Last: stopped before the rest goes.
};

}  // namespace gantry::api
