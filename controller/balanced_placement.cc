#include "controller/balanced_placement.h"

#include <algorithm>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace gantry::controller {

bool GpuMatches(const v1::GpuInfo& gpu, const v1::GpuRequirements& req) {
  if (req.min_memory_bytes() > 0 && gpu.memory_total_bytes() < req.min_memory_bytes()) return false;
  if (!req.model().empty() &&
      !absl::StrContains(absl::AsciiStrToLower(gpu.name()), absl::AsciiStrToLower(req.model()))) {
    return false;
  }
  return true;
}

absl::StatusOr<PlacementChoice> BalancedPlacement::Choose(const CandidateWalk& online, const GpuLedger& ledger,
                                                          const v1::SessionSpec& spec, const std::string& node_id) {
  if (online.empty()) return absl::UnavailableError(absl::StrCat("no online worker on node ", node_id));
  const auto& req = spec.resources().gpus();
  const size_t wanted = static_cast<size_t>(std::max(0, req.count()));
  int with_skills = 0;
  size_t best_free = 0;
  std::vector<std::string> free;
  std::optional<PlacementChoice> chosen;
  online.Walk([&](size_t position, const WorkerCandidate& w) {
    const bool has_skills = std::all_of(spec.skills().begin(), spec.skills().end(), [&](const std::string& k) {
      return std::find(w.skills->begin(), w.skills->end(), k) != w.skills->end();
    });
    if (!has_skills) return true;
    ++with_skills;
    free.clear();
    for (const auto& g : *w.gpus) {
      if (free.size() == wanted) break;
      if (ledger.IsFree(g.uuid()) && GpuMatches(g, req)) free.push_back(g.uuid());
    }
    if (free.size() == wanted) {
      chosen = PlacementChoice{position, std::move(free)};  // The most preferred that fits.
      return false;
    }
    best_free = std::max(best_free, free.size());
    return true;
  });
  if (chosen.has_value()) return *std::move(chosen);
  if (with_skills == 0) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "spec.skills: no online worker has all of [", absl::StrJoin(spec.skills(), ", "), "]"));
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      "spec.resources.gpus: asked for ", req.count(), " GPU(s)",
      req.model().empty() ? "" : absl::StrCat(" of model \"", req.model(), "\""),
      req.min_memory_bytes() > 0 ? absl::StrCat(" with at least ", req.min_memory_bytes(), " bytes") : "",
      "; the most matching free GPUs on one worker of node ", node_id, " is ", best_free));
}

}  // namespace gantry::controller
