#include "worker/log_janitor.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <vector>

#include <spdlog/spdlog.h>

#include "absl/strings/match.h"
#include "absl/time/clock.h"

namespace gantry::worker {
namespace {

// Logs of a session written this recently (or within the retention, if shorter) are left
// alone: it may be starting.
constexpr absl::Duration kFreshLog = absl::Minutes(1);

bool IsSessionId(absl::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

// "<id>.log" or "<id>.log.1": the session's id; "" for anything else.
std::string SessionOfLog(absl::string_view name) {
  for (absl::string_view suffix : {".log", ".log.1"}) {
    if (absl::EndsWith(name, suffix) && IsSessionId(name.substr(0, name.size() - suffix.size()))) {
      return std::string(name.substr(0, 36));
    }
  }
  return "";
}

struct SessionLogs {
  std::vector<std::string> paths;
  int64_t bytes = 0;
  absl::Time newest = absl::InfinitePast();
};

}  // namespace

LogJanitor::LogJanitor(std::string session_dir, LogRetention retention, IsRunning running)
    : dir_(std::move(session_dir)), retention_(retention), running_(std::move(running)) {}

void LogJanitor::Start() { task_.Start(interval(), /*run_at_start=*/true, [this] { SweepOnce(); }); }

absl::Duration LogJanitor::interval() const {
  return std::clamp(retention_.keep_ended / 4, absl::Seconds(1), absl::Minutes(1));
}

int LogJanitor::SweepOnce() {
  std::map<std::string, SessionLogs> logs;
  int64_t total = 0;
  DIR* d = opendir(dir_.c_str());
  if (d == nullptr) return 0;
  while (dirent* e = readdir(d)) {
    const std::string id = SessionOfLog(e->d_name);
    if (id.empty()) continue;
    const std::string path = dir_ + "/" + e->d_name;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    SessionLogs& s = logs[id];
    s.paths.push_back(path);
    s.bytes += st.st_size;
    s.newest = std::max(s.newest, absl::FromTimeT(st.st_mtime));
    total += st.st_size;
  }
  closedir(d);

  const absl::Time now = absl::Now();
  const absl::Duration fresh = std::min(kFreshLog, retention_.keep_ended);
  std::vector<std::pair<absl::Time, std::string>> removable;  // Ended, oldest first once sorted.
  int removed = 0;
  auto remove = [&](const std::string& id) {
    for (const auto& path : logs[id].paths) unlink(path.c_str());
    total -= logs[id].bytes;
    ++removed;
  };
  for (const auto& [id, s] : logs) {
    if (now - s.newest < fresh || running_(id)) continue;
    if (now - s.newest > retention_.keep_ended) {
      remove(id);
    } else {
      removable.emplace_back(s.newest, id);
    }
  }
  std::sort(removable.begin(), removable.end());
  for (const auto& [newest, id] : removable) {
    if (total <= retention_.budget_bytes) break;
    remove(id);
  }
  if (removed > 0) {
    spdlog::info("removed the logs of {} ended session(s) (kept {}, all session logs under {} bytes); {} bytes left",
                 removed, absl::FormatDuration(retention_.keep_ended), retention_.budget_bytes, total);
  }
  if (total > retention_.budget_bytes) {
    spdlog::warn("session logs use {} bytes, over the budget of {}: the rest belong to running or just-ended sessions",
                 total, retention_.budget_bytes);
  }
  return removed;
}

}  // namespace gantry::worker
