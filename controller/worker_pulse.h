// What a worker's heartbeats say (when it last beat, its invokes in flight, its GPUs' live
// figures, its skills), kept apart from the Fleet's lock with a small lock of its own: a
// heartbeat never waits for a placement and never holds one up. At 1,000 workers beating
// every second, a heartbeat taking the fleet's lock was a thousand waits a second in the way of
// every placement. Only a change of skills, which changes what the fleet serves, takes the
// fleet's lock as well.
//
// Thread-safe.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "gantry/v1/types.pb.h"
#include "gantry/v1/worker_service.pb.h"

namespace gantry::controller {

class WorkerPulse {
 public:
  // For a worker with these GPUs (their order is kept) and skills, registered at `now`, whose
  // heartbeats are overdue `overdue_after` after the last one.
  WorkerPulse(const std::vector<v1::GpuInfo>& gpus, std::vector<std::string> skills, absl::Time now,
              absl::Duration overdue_after);

  // Records `beat`, received at `now`. Returns the worker's new skills when they differ from
  // the last ones it reported (the fleet must learn them), nothing otherwise.
  std::optional<std::vector<std::string>> Beat(const v1::WorkerHeartbeat& beat, absl::Time now);
  // The worker's stream (re)opened at `now`: that counts as a beat.
  void Restart(absl::Time now);

  absl::Time last_beat() const;
  // When its heartbeats are overdue.
  absl::Time deadline() const;
  // Whether the worker went silent: its heartbeats are overdue at `now`, or the beats since
  // they last were span less than `overdue_after`. A controller that was stalled itself (a
  // loaded node, a debugger, swap) reads, when it runs again, the beats the worker sent
  // meanwhile all at once: they ended the overdue gap but prove nothing about the worker now.
  bool WentSilent(absl::Time now) const;
  int active_invokes() const;
  // Copies the live figures (free memory, utilisation) into `gpus`, the worker's GPUs in the
  // order they were given to the constructor.
  void CopyLiveFigures(std::vector<v1::GpuInfo>& gpus) const;

 private:
  struct LiveFigures {
    std::string uuid;
    int64_t memory_free_bytes = 0;
    int32_t utilization_percent = 0;
  };
  const absl::Duration overdue_after_;
  mutable std::mutex mu_;
  absl::Time last_beat_ ABSL_GUARDED_BY(mu_);
  absl::Time gap_ended_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();  // The beat after the last overdue gap.
  int active_invokes_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<LiveFigures> gpus_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> skills_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gantry::controller
