// CPU and memory of each session's process group, from /proc: one scan of /proc per sample
// covers every session. CPU is the rate since the previous sample.
//
// Not thread-safe: one sampler thread owns it.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gantry/v1/types.pb.h"

namespace gantry::worker {

class ProcessMetrics {
 public:
  ProcessMetrics();

  // Usage of each given process group (session id -> group id). `gpu_memory_by_pid` (from NVML,
  // may be empty) is summed over each group's processes.
  std::map<std::string, v1::ResourceUsage> Sample(const std::map<std::string, pid_t>& groups,
                                                  const std::map<pid_t, int64_t>& gpu_memory_by_pid = {});

 private:
  struct Previous {
    absl::Time at;
    int64_t ticks = 0;
  };
  std::map<std::string, Previous> previous_;
  const int64_t ticks_per_second_;
  const int64_t page_bytes_;
  const int64_t total_memory_bytes_;
};

}  // namespace gantry::worker
