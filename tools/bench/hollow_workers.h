// Hollow workers, as Kubernetes measures its scheduler with hollow nodes: real WorkerService
// clients over real mTLS streams, each with its own certificate and connection, that register
// simulated GPUs, heartbeat, and acknowledge every start at once without running anything. The
// control plane under them does all its real work.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace gantry::bench {

struct HollowWorkerOptions {
  std::string controller_address;
  std::string ca_dir;  // ca.crt and ca.key: each worker's certificate is issued here
  std::string work_dir;
  std::string name_prefix = "hollow";
  int count = 1;
  int gpus_each = 8;
};

class HollowWorkers {
 public:
  explicit HollowWorkers(HollowWorkerOptions options);
  ~HollowWorkers();
  // Issues the certificates and connects every worker; returns once all are registered.
  absl::Status Start();
  int64_t starts() const { return starts_.load(); }
  int64_t stops() const { return stops_.load(); }

 private:
  struct Worker;
  HollowWorkerOptions options_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<int64_t> starts_{0}, stops_{0};
};

}  // namespace gantry::bench
