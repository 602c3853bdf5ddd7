// The worker's skills: a fixed list from configuration plus one "model/<name>" per
// sub-directory of the models directory (each sub-directory is a model; its size is the sum of
// the files in it). Re-scanned on demand; a scan never follows symlinks out of the directory and
// stops counting after a bounded number of entries.
#pragma once

#include <string>
#include <vector>

#include "gantry/v1/worker_service.pb.h"

namespace gantry::worker {

struct SkillSet {
  std::vector<std::string> skills;   // Sorted, unique.
  std::vector<v1::ModelInfo> models;
};

// `fixed`: skills from configuration. `models_dir` may be empty (no models).
SkillSet ScanSkills(const std::vector<std::string>& fixed, const std::string& models_dir);

}  // namespace gantry::worker
