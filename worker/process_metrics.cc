#include "worker/process_metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace gantry::worker {
namespace {

struct Totals {
  int64_t ticks = 0;
  int64_t rss_pages = 0;
  int64_t gpu_bytes = 0;
};

// Process group, utime + stime and RSS from /proc/PID/stat (fields 5, 14, 15, 24).
bool ReadStat(const std::string& pid, pid_t* group, int64_t* ticks, int64_t* rss_pages) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(in, line)) return false;
  // The command name (field 2) may hold spaces and parentheses: fields restart after the last ')'.
  auto close = line.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(line.substr(close + 2));
  std::vector<std::string> f;
  std::string token;
  while (rest >> token && f.size() < 22) f.push_back(token);
  if (f.size() < 22) return false;
  // f[0] is field 3 (state): field N is f[N - 3].
  int64_t pgrp = 0, utime = 0, stime = 0, rss = 0;
  if (!absl::SimpleAtoi(f[2], &pgrp) || !absl::SimpleAtoi(f[11], &utime) ||
      !absl::SimpleAtoi(f[12], &stime) || !absl::SimpleAtoi(f[21], &rss)) {
    return false;
  }
  *group = static_cast<pid_t>(pgrp);
  *ticks = utime + stime;
  *rss_pages = rss;
  return true;
}

}  // namespace

ProcessMetrics::ProcessMetrics()
    : ticks_per_second_(sysconf(_SC_CLK_TCK)),
      page_bytes_(sysconf(_SC_PAGESIZE)),
      total_memory_bytes_(static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE)) {}

std::map<std::string, v1::ResourceUsage> ProcessMetrics::Sample(
    const std::map<std::string, pid_t>& groups, const std::map<pid_t, int64_t>& gpu_memory_by_pid) {
  std::map<pid_t, Totals> by_group;
  for (const auto& [session, group] : groups) by_group[group];
  if (DIR* proc = opendir("/proc")) {
    while (dirent* e = readdir(proc)) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      pid_t group;
      int64_t ticks, rss;
      if (!ReadStat(e->d_name, &group, &ticks, &rss)) continue;
      auto it = by_group.find(group);
      if (it == by_group.end()) continue;
      it->second.ticks += ticks;
      it->second.rss_pages += rss;
      int64_t pid = 0;
      if (!gpu_memory_by_pid.empty() && absl::SimpleAtoi(e->d_name, &pid)) {
        auto gpu = gpu_memory_by_pid.find(static_cast<pid_t>(pid));
        if (gpu != gpu_memory_by_pid.end()) it->second.gpu_bytes += gpu->second;
      }
    }
    closedir(proc);
  }
  const absl::Time now = absl::Now();
  std::map<std::string, v1::ResourceUsage> out;
  std::map<std::string, Previous> next;
  for (const auto& [session, group] : groups) {
    const Totals& t = by_group[group];
    v1::ResourceUsage& u = out[session];
    u.set_memory_bytes(t.rss_pages * page_bytes_);
    u.set_gpu_memory_bytes(t.gpu_bytes);
    if (total_memory_bytes_ > 0) {
      u.set_memory_percent(100.0 * static_cast<double>(u.memory_bytes()) / total_memory_bytes_);
    }
    auto prev = previous_.find(session);
    if (prev != previous_.end() && now > prev->second.at && t.ticks >= prev->second.ticks) {
      double seconds = absl::ToDoubleSeconds(now - prev->second.at);
      double cpu_seconds = static_cast<double>(t.ticks - prev->second.ticks) / ticks_per_second_;
      u.set_cpu_percent(100.0 * cpu_seconds / seconds);
      u.set_cpu_millis(static_cast<int64_t>(1000.0 * cpu_seconds / seconds));
    }
    next[session] = {now, t.ticks};
  }
  previous_ = std::move(next);  // Forget sessions that ended.
  return out;
}

}  // namespace gantry::worker
