#include "api-server/invoke_candidate_cache.h"

#include <algorithm>
#include <set>
#include <tuple>
#include <utility>

namespace gantry::api {

InvokeCandidateCache::InvokeCandidateCache(Fetch fetch, absl::Duration max_age, Clock now)
    : fetch_(std::move(fetch)), max_age_(max_age), now_(std::move(now)) {}

std::optional<std::vector<ControllerTarget>> InvokeCandidateCache::CandidatesAtHand(
    const std::string& capability, const std::function<bool(const std::string&)>& matches, int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_capability_.find(capability);
  if (it == by_capability_.end() || now_() - it->second.fetched >= max_age_) return std::nullopt;
  return RankLocked(it->second, matches, limit);
}

absl::StatusOr<std::vector<ControllerTarget>> InvokeCandidateCache::Candidates(
    const std::string& capability, const std::function<bool(const std::string&)>& matches, int limit) {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = by_capability_.find(capability);
  if (it == by_capability_.end() || now_() - it->second.fetched >= max_age_) {
    lock.unlock();
    const absl::Time asked = now_();
    absl::StatusOr<std::vector<InvokeCandidateRow>> rows = fetch_(capability);
    if (!rows.ok()) return rows.status();
    lock.lock();
    if (rows->empty()) {
      // Nothing serves it: not kept, so that names nobody serves cannot fill the cache.
      by_capability_.erase(capability);
      return std::vector<ControllerTarget>{};
    }
    if (by_capability_.size() >= kMaxCapabilities && by_capability_.count(capability) == 0) {
      by_capability_.clear();  // Rare (that many capabilities served at once): start afresh.
    }
    it = by_capability_.insert_or_assign(capability, Entry{asked, *std::move(rows), {}}).first;
  }
  return RankLocked(it->second, matches, limit);
}

std::vector<ControllerTarget> InvokeCandidateCache::RankLocked(const Entry& entry,
                                                               const std::function<bool(const std::string&)>& matches,
                                                               int limit) {
  struct Ranked {
    int load;          // Invokes in flight at the fetch, and picked here since.
    uint64_t picked;   // 0: never picked here, first among equals.
    size_t position;   // PostgreSQL's order last.
    const ControllerTarget* target;
  };
  std::vector<Ranked> ranked;
  std::set<std::string> seen;
  for (size_t i = 0; i < entry.rows.size(); ++i) {
    const InvokeCandidateRow& row = entry.rows[i];
    if (seen.count(row.target.id) != 0 || !matches(row.version)) continue;
    seen.insert(row.target.id);
    auto picks = entry.picks.find(row.target.id);
    auto last = last_pick_.find(row.target.id);
    ranked.push_back({row.active_invokes + (picks == entry.picks.end() ? 0 : picks->second),
                      last == last_pick_.end() ? 0 : last->second, i, &row.target});
  }
  std::sort(ranked.begin(), ranked.end(), [](const Ranked& a, const Ranked& b) {
    return std::tie(a.load, a.picked, a.position) < std::tie(b.load, b.picked, b.position);
  });
  std::vector<ControllerTarget> out;
  for (const Ranked& r : ranked) {
    if (static_cast<int>(out.size()) >= limit) break;
    out.push_back(*r.target);
  }
  return out;
}

void InvokeCandidateCache::Picked(const std::string& capability, const std::string& controller_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (last_pick_.size() >= kMaxControllers && last_pick_.count(controller_id) == 0) last_pick_.clear();
  last_pick_[controller_id] = next_pick_++;
  auto it = by_capability_.find(capability);
  if (it != by_capability_.end()) ++it->second.picks[controller_id];
}

}  // namespace gantry::api
