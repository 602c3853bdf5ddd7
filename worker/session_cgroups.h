// Optional cgroup v2 confinement of sessions: each session in its own cgroup under
// <root>/gantry-worker-<pid>, with cpu.max and memory.max from its spec's resources when those
// controllers can be enabled there. Wherever that is not possible (no cgroup v2, a read-only
// tree, controllers held by cgroup v1 or not delegated) the worker says so once at start-up and
// in each affected session's log, and sessions run without the limit. A session's cgroup also
// lets the worker kill everything the session started, even processes that left its group.
//
// Thread-safe after Probe.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace gantry::worker {

struct CgroupRequest {
  int64_t cpu_millis = 0;    // 0: no CPU limit.
  int64_t memory_bytes = 0;  // 0: no memory limit.
};

struct PreparedCgroup {
  int procs_fd = -1;  // The session's cgroup.procs, open for writing; the caller closes it.
  int dir_fd = -1;    // The session's cgroup directory, for CLONE_INTO_CGROUP; the caller closes it.
  // Limits asked for that cannot be enforced, and why; empty when all hold.
  std::string not_enforced;
};

class SessionCgroups {
 public:
  // `root`: "off", "auto" (the cgroup v2 tree the worker runs in) or a cgroup v2 directory.
  // `proc_root` is where "auto" looks up the worker's own cgroup.
  static SessionCgroups Probe(const std::string& root, const std::string& worker_name,
                              const std::string& proc_root = "/proc");

  bool enabled() const { return !parent_.empty(); }
  bool cpu_limits() const { return cpu_; }
  bool memory_limits() const { return memory_; }
  // One line for the operator: what is enforced and, where not, why.
  const std::string& summary() const { return summary_; }
  const std::string& parent() const { return parent_; }

  // Creates the session's cgroup with its limits. With cgroups disabled, both fds are -1.
  absl::StatusOr<PreparedCgroup> Prepare(const std::string& session_id, const CgroupRequest& request) const;
  // Kills whatever is still in the session's cgroup and removes it.
  void Remove(const std::string& session_id) const;
  // Removes every session cgroup and the worker's own parent: on shutdown.
  void RemoveAll() const;

 private:
  std::string parent_;  // <root>/gantry-worker-<pid>; empty when disabled.
  bool cpu_ = false;
  bool memory_ = false;
  std::string why_not_;  // Why limits are not enforced (for session logs).
  std::string summary_;
};

}  // namespace gantry::worker
