// Keeps session logs from filling the worker's disk: each session's log is capped (SessionLog);
// this removes the logs of ended sessions once they are older than the retention, and, while
// all the session logs together are over the worker's budget, the oldest ended ones first. A
// running session's log is never removed (its cap bounds it), nor one written in the last
// minute or retention, whichever is shorter (a session may be starting). In Kubernetes the session directory is an emptyDir with
// a size limit: over it, the kubelet evicts the whole worker pod, with every session on it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/time/time.h"
#include "common/periodic_task.h"

namespace gantry::worker {

struct LogRetention {
  absl::Duration keep_ended = absl::Hours(24);
  int64_t budget_bytes = int64_t{10} << 30;
};

class LogJanitor {
 public:
  using IsRunning = std::function<bool(const std::string& session_id)>;
  LogJanitor(std::string session_dir, LogRetention retention, IsRunning running);
  void Start();
  void Stop() { task_.Stop(); }
  // One sweep: the sessions whose logs it removed.
  int SweepOnce();
  // Between sweeps: a quarter of the retention, between 1 s and a minute.
  absl::Duration interval() const;

 private:
  const std::string dir_;
  const LogRetention retention_;
  const IsRunning running_;
  PeriodicTask task_;  // Last: stopped before the rest goes.
};

}  // namespace gantry::worker
