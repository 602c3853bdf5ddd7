#include "worker/model_scanner.h"

#include <algorithm>
#include <filesystem>
#include <set>

namespace gantry::worker {
namespace {

constexpr int kMaxEntriesPerModel = 100000;
constexpr size_t kMaxModels = 1024;

int64_t DirectorySize(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  int64_t total = 0;
  int seen = 0;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end && seen < kMaxEntriesPerModel; it.increment(ec), ++seen) {
    if (it->is_regular_file(ec) && !it->is_symlink(ec)) total += static_cast<int64_t>(it->file_size(ec));
  }
  return total;
}

}  // namespace

SkillSet ScanSkills(const std::vector<std::string>& fixed, const std::string& models_dir) {
  namespace fs = std::filesystem;
  std::set<std::string> skills(fixed.begin(), fixed.end());
  SkillSet out;
  std::error_code ec;
  if (!models_dir.empty()) {
    std::vector<fs::path> dirs;
    for (fs::directory_iterator it(models_dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec) && it->path().filename().string()[0] != '.') {
        dirs.push_back(it->path());
      }
      if (dirs.size() >= kMaxModels) break;
    }
    std::sort(dirs.begin(), dirs.end());
    for (const auto& d : dirs) {
      v1::ModelInfo m;
      m.set_name(d.filename().string());
      m.set_size_bytes(DirectorySize(d));
      skills.insert("model/" + m.name());
      out.models.push_back(std::move(m));
    }
  }
  out.skills.assign(skills.begin(), skills.end());
  return out;
}

}  // namespace gantry::worker
