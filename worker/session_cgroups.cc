#include "worker/session_cgroups.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace gantry::worker {
namespace {

// Writes `value` to a cgroup file; the error text, or empty on success.
std::string WriteValue(const std::string& path, const std::string& value) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return std::strerror(errno);
  ssize_t n = write(fd, value.data(), value.size());
  int err = errno;
  close(fd);
  return n == static_cast<ssize_t>(value.size()) ? "" : std::strerror(err);
}

std::string ReadValue(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool HasWord(const std::string& text, absl::string_view word) {
  for (absl::string_view w : absl::StrSplit(text, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
    if (w == word) return true;
  }
  return false;
}

// The cgroup v2 directory this process runs in, from mountinfo and /proc/self/cgroup.
std::string OwnCgroupDir(const std::string& proc_root) {
  std::string mount;
  std::ifstream mountinfo(proc_root + "/self/mountinfo");
  for (std::string line; std::getline(mountinfo, line);) {
    // "... mount_point options - fstype source super_options": fstype follows " - ".
    auto dash = line.find(" - ");
    if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
    std::vector<std::string> fields = absl::StrSplit(line.substr(0, dash), ' ');
    if (fields.size() >= 5) mount = fields[4];
    break;
  }
  if (mount.empty()) return "";
  std::ifstream cgroup(proc_root + "/self/cgroup");
  for (std::string line; std::getline(cgroup, line);) {
    if (line.rfind("0::", 0) == 0) return line.substr(3) == "/" ? mount : mount + line.substr(3);
  }
  return "";
}

// Kills every process in a cgroup and removes it; waits briefly for the processes to go.
void KillAndRemove(const std::string& dir) {
  WriteValue(dir + "/cgroup.kill", "1");
  for (int i = 0; i < 50; ++i) {
    if (rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  spdlog::warn("cgroup {} could not be removed: {}", dir, std::strerror(errno));
}

constexpr absl::string_view kPrefix = "gantry-worker-";

void RemoveDir(const std::string& dir) {
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_type == DT_DIR && e->d_name[0] != '.') KillAndRemove(dir + "/" + e->d_name);
    }
    closedir(d);
  }
  KillAndRemove(dir);
}

// Workers that died (by SIGKILL, say) leave their cgroups behind; their sessions died with
// them, but anything a session started outside its process group is still in there.
void RemoveStale(const std::string& root) {
  DIR* d = opendir(root.c_str());
  if (d == nullptr) return;
  std::vector<std::string> stale;
  while (dirent* e = readdir(d)) {
    absl::string_view name = e->d_name;
    int pid = 0;
    if (e->d_type != DT_DIR || !absl::ConsumePrefix(&name, kPrefix) || !absl::SimpleAtoi(name, &pid)) continue;
    if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH) stale.push_back(root + "/" + e->d_name);
  }
  closedir(d);
  for (const auto& dir : stale) RemoveDir(dir);
}

}  // namespace

SessionCgroups SessionCgroups::Probe(const std::string& root_flag, const std::string& worker_name,
                                     const std::string& proc_root) {
  SessionCgroups cg;
  auto disabled = [&](const std::string& why) {
    cg.parent_.clear();
    cg.why_not_ = why;
    cg.summary_ = absl::StrCat("cgroup v2: ", why, "; session CPU and memory limits are NOT enforced");
    return cg;
  };
  if (root_flag == "off") return disabled("off (--cgroup-root=off)");
  std::string root = root_flag == "auto" ? OwnCgroupDir(proc_root) : root_flag;
  if (root.empty()) return disabled("no cgroup v2 hierarchy is mounted");
  if (access((root + "/cgroup.procs").c_str(), F_OK) != 0) {
    return disabled(absl::StrCat(root, " is not a cgroup v2 directory"));
  }
  RemoveStale(root);
  // Named by pid: several workers (with the same name, even) may share one cgroup tree.
  cg.parent_ = absl::StrCat(root, "/", kPrefix, getpid());
  if (mkdir(cg.parent_.c_str(), 0755) != 0 && errno != EEXIST) {
    return disabled(absl::StrCat("cannot create ", cg.parent_, " (", std::strerror(errno), ")"));
  }
  spdlog::debug("worker {}: session cgroups under {}", worker_name, cg.parent_);
  std::vector<std::string> missing;
  for (const char* controller : {"cpu", "memory"}) {
    std::string why;
    if (!HasWord(ReadValue(root + "/cgroup.controllers"), controller)) {
      why = absl::StrCat("the ", controller, " controller is not available in ", root,
                         " (held by cgroup v1, or not delegated)");
    } else {
      // The root may already delegate it; if not, try (fails when the root holds processes).
      if (!HasWord(ReadValue(root + "/cgroup.subtree_control"), controller)) {
        WriteValue(root + "/cgroup.subtree_control", absl::StrCat("+", controller));
      }
      std::string err = WriteValue(cg.parent_ + "/cgroup.subtree_control", absl::StrCat("+", controller));
      if (!err.empty()) why = absl::StrCat("cannot enable the ", controller, " controller under ", root, " (", err, ")");
    }
    (std::string(controller) == "cpu" ? cg.cpu_ : cg.memory_) = why.empty();
    if (!why.empty()) missing.push_back(why);
  }
  cg.why_not_ = absl::StrJoin(missing, "; ");
  if (missing.empty()) {
    cg.summary_ = absl::StrCat("cgroup v2: sessions in ", cg.parent_, "; CPU and memory limits enforced");
  } else {
    cg.summary_ = absl::StrCat("cgroup v2: sessions in ", cg.parent_, "; ",
                               cg.cpu_ ? "CPU limits enforced" : "CPU limits NOT enforced", ", ",
                               cg.memory_ ? "memory limits enforced" : "memory limits NOT enforced", ": ",
                               cg.why_not_);
  }
  return cg;
}

absl::StatusOr<PreparedCgroup> SessionCgroups::Prepare(const std::string& session_id,
                                                       const CgroupRequest& request) const {
  PreparedCgroup prepared;
  std::vector<std::string> not_enforced;
  if (request.cpu_millis > 0 && !cpu_) not_enforced.push_back(absl::StrCat("cpu_millis=", request.cpu_millis));
  if (request.memory_bytes > 0 && !memory_) {
    not_enforced.push_back(absl::StrCat("memory_bytes=", request.memory_bytes));
  }
  if (!not_enforced.empty()) {
    prepared.not_enforced = absl::StrCat(absl::StrJoin(not_enforced, ", "), " not enforced: ", why_not_);
  }
  if (!enabled()) return prepared;
  std::string dir = absl::StrCat(parent_, "/", session_id);
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("cannot create cgroup ", dir, ": ", std::strerror(errno)));
  }
  auto fail = [&](const std::string& what, const std::string& err) {
    KillAndRemove(dir);
    return absl::InternalError(absl::StrCat("cannot set ", what, " of cgroup ", dir, ": ", err));
  };
  if (request.cpu_millis > 0 && cpu_) {
    // cpu.max is "quota period" in microseconds: 1000 millis = one core = a full period.
    std::string err = WriteValue(dir + "/cpu.max", absl::StrCat(request.cpu_millis * 100, " 100000"));
    if (!err.empty()) return fail("cpu.max", err);
  }
  if (request.memory_bytes > 0 && memory_) {
    std::string err = WriteValue(dir + "/memory.max", std::to_string(request.memory_bytes));
    if (!err.empty()) return fail("memory.max", err);
  }
  prepared.procs_fd = open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
  if (prepared.procs_fd < 0) return fail("cgroup.procs", std::strerror(errno));
  prepared.dir_fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (prepared.dir_fd < 0) {
    close(prepared.procs_fd);
    return fail("directory", std::strerror(errno));
  }
  return prepared;
}

void SessionCgroups::Remove(const std::string& session_id) const {
  if (enabled()) KillAndRemove(absl::StrCat(parent_, "/", session_id));
}

void SessionCgroups::RemoveAll() const {
  if (enabled()) RemoveDir(parent_);
}

}  // namespace gantry::worker
