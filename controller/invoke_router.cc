#include "controller/invoke_router.h"

#include <algorithm>

namespace gantry::controller {

std::optional<InvokeTarget> InvokeRouter::Pick(std::vector<InvokeTarget> candidates,
                                               const std::string& affinity_key,
                                               const std::set<std::string>& exclude) {
  candidates.erase(std::remove_if(candidates.begin(), candidates.end(),
                                  [&](const InvokeTarget& t) { return exclude.count(t.worker_name) != 0; }),
                   candidates.end());
  if (candidates.empty()) return std::nullopt;
  std::sort(candidates.begin(), candidates.end(),
            [](const InvokeTarget& a, const InvokeTarget& b) { return a.worker_name < b.worker_name; });
  std::lock_guard<std::mutex> lock(mu_);
  if (!affinity_key.empty()) {
    auto pinned = affinity_.find(affinity_key);
    if (pinned != affinity_.end()) {
      for (const auto& c : candidates) {
        if (c.worker_name == pinned->second) return c;
      }
    }
  }
  int least = -1;
  std::vector<const InvokeTarget*> tied;
  for (const auto& c : candidates) {
    int n = in_flight_[c.worker_name];
    if (least < 0 || n < least) {
      least = n;
      tied.clear();
    }
    if (n == least) tied.push_back(&c);
  }
  InvokeTarget chosen = *tied[turn_++ % tied.size()];
  if (!affinity_key.empty()) {
    if (affinity_.size() >= kMaxAffinityKeys) affinity_.clear();  // Bounded; affinity is a hint.
    affinity_[affinity_key] = chosen.worker_name;
  }
  return chosen;
}

void InvokeRouter::Started(const std::string& worker_name) {
  std::lock_guard<std::mutex> lock(mu_);
  ++in_flight_[worker_name];
}

void InvokeRouter::Ended(const std::string& worker_name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (--in_flight_[worker_name] <= 0) in_flight_.erase(worker_name);
}

int InvokeRouter::in_flight(const std::string& worker_name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = in_flight_.find(worker_name);
  return it == in_flight_.end() ? 0 : it->second;
}

}  // namespace gantry::controller
