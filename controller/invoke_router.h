// Chooses the worker for each invoke: affinity first (requests with the same
// metadata["session"] go to the same worker while it can serve them), then the fewest requests
// in flight, round-robin among equals. Counts in-flight requests itself: they change far more
// often than heartbeats report.
//
// Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "controller/fleet.h"

namespace gantry::controller {

class InvokeRouter {
 public:
  // Null when every candidate is excluded.
  std::optional<InvokeTarget> Pick(std::vector<InvokeTarget> candidates, const std::string& affinity_key,
                                   const std::set<std::string>& exclude);
  void Started(const std::string& worker_name);
  void Ended(const std::string& worker_name);
  int in_flight(const std::string& worker_name) const;

 private:
  static constexpr size_t kMaxAffinityKeys = 100000;
  mutable std::mutex mu_;
  std::map<std::string, int> in_flight_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> affinity_ ABSL_GUARDED_BY(mu_);  // key -> worker name
  uint64_t turn_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace gantry::controller
