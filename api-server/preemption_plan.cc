#include "api-server/preemption_plan.h"

#include <algorithm>
#include <climits>
#include <map>
#include <tuple>
#include <utility>

namespace gantry::api {
namespace {

// Orders later times first.
absl::Duration LaterFirst(absl::Time t) { return -(t - absl::UnixEpoch()); }

// How bad a set of victims is; smaller is better (see the header's order).
struct Cost {
  int within_quota = 0;
  int count = 0;
  int32_t highest_priority = 0;
  int64_t priority_sum = 0;
  absl::Time earliest_start = absl::InfiniteFuture();  // Later is better: less work lost.

  bool operator<(const Cost& o) const {
    return std::make_tuple(within_quota, count, highest_priority, priority_sum, LaterFirst(earliest_start)) <
           std::make_tuple(o.within_quota, o.count, o.highest_priority, o.priority_sum, LaterFirst(o.earliest_start));
  }
};

Cost CostOf(const std::vector<const PreemptionCandidate*>& victims) {
  Cost c;
  c.count = static_cast<int>(victims.size());
  c.highest_priority = INT32_MIN;
  for (const PreemptionCandidate* v : victims) {
    if (!v->over_quota) ++c.within_quota;
    c.highest_priority = std::max(c.highest_priority, v->priority);
    c.priority_sum += v->priority;
    c.earliest_start = std::min(c.earliest_start, v->started);
  }
  return c;
}

// Above this many candidates on one worker the subsets are too many to try: the victims are
// taken in order (over quota, lowest priority, latest start) until they free enough.
constexpr size_t kMaxExhaustive = 16;

// The best victims on one worker, where they must free `needed` GPUs; empty when none do.
std::vector<const PreemptionCandidate*> BestOnWorker(int needed, std::vector<const PreemptionCandidate*> on_worker) {
  std::sort(on_worker.begin(), on_worker.end(), [](const PreemptionCandidate* a, const PreemptionCandidate* b) {
    return std::make_tuple(!a->over_quota, a->priority, LaterFirst(a->started), a->session_id) <
           std::make_tuple(!b->over_quota, b->priority, LaterFirst(b->started), b->session_id);
  });
  if (on_worker.size() > kMaxExhaustive) {
    std::vector<const PreemptionCandidate*> taken;
    int freed = 0;
    for (const PreemptionCandidate* v : on_worker) {
      if (freed >= needed) break;
      taken.push_back(v);
      freed += v->gpus;
    }
    return freed >= needed ? taken : std::vector<const PreemptionCandidate*>{};
  }
  std::vector<const PreemptionCandidate*> best;
  std::optional<Cost> best_cost;
  const uint32_t subsets = 1u << on_worker.size();
  for (uint32_t mask = 1; mask < subsets; ++mask) {
    std::vector<const PreemptionCandidate*> chosen;
    int freed = 0;
    for (size_t i = 0; i < on_worker.size(); ++i) {
      if ((mask & (1u << i)) == 0) continue;
      chosen.push_back(on_worker[i]);
      freed += on_worker[i]->gpus;
    }
    if (freed < needed) continue;
    const Cost cost = CostOf(chosen);
    if (!best_cost || cost < *best_cost) {
      best_cost = cost;
      best = std::move(chosen);
    }
  }
  return best;
}

}  // namespace

std::optional<PreemptionPlan> PlanPreemption(int gpus, const std::vector<PreemptionCandidate>& candidates) {
  if (gpus <= 0) return std::nullopt;  // Holds no GPUs: nothing to make room for.
  std::map<std::pair<std::string, std::string>, std::vector<const PreemptionCandidate*>> by_worker;
  for (const PreemptionCandidate& c : candidates) {
    if (c.gpus > 0) by_worker[{c.controller_id, c.worker_id}].push_back(&c);
  }
  std::optional<PreemptionPlan> best;
  std::optional<Cost> best_cost;
  for (const auto& [where, on_worker] : by_worker) {
    const PreemptionCandidate& any = *on_worker.front();
    // The victims free what the worker and its controller lack.
    const int needed = std::max({gpus - std::max(any.worker_gpus_free, 0), gpus - std::max(any.controller_unreserved, 0), 0});
    if (needed == 0) continue;  // It fits without preempting: not this function's case.
    std::vector<const PreemptionCandidate*> victims = BestOnWorker(needed, on_worker);
    if (victims.empty()) continue;
    const Cost cost = CostOf(victims);
    if (best_cost && !(cost < *best_cost)) continue;
    best_cost = cost;
    best = PreemptionPlan{where.first, where.second, {}};
    for (const PreemptionCandidate* v : victims) best->victims.push_back(*v);
  }
  return best;
}

}  // namespace gantry::api
