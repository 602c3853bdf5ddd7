#include "worker/home_cleaner.h"

#include <spdlog/spdlog.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "worker/handler_process.h"

namespace gantry::worker {

HomeCleaner::HomeCleaner(SessionIdentities& identities) : identities_(identities) {
  thread_ = std::thread([this] { Loop(); });
}

HomeCleaner::~HomeCleaner() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void HomeCleaner::Clean(const std::string& session_id, const std::string& home, const SessionUser& user) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back({session_id, home, user});
  }
  cv_.notify_all();
}

int HomeCleaner::SweepLeftovers(const std::string& session_dir) {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir(session_dir.c_str()), closedir);
  if (dir == nullptr) return 0;
  int queued = 0;
  while (const dirent* entry = readdir(dir.get())) {
    const std::string name = entry->d_name;
    if (name.empty() || name[0] == '.') continue;  // ".", "..", ".handlers"
    const std::string home = session_dir + "/" + name;
    struct stat st;
    if (lstat(home.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;  // logs, and no link is followed
    const std::string key = "leftover/" + name;
    auto owner = identities_.Hold(key, st.st_uid);
    if (!owner.ok()) {
      spdlog::warn("{} is left alone: not a session's home ({})", home, std::string(owner.status().message()));
      continue;
    }
    Clean(key, home, *owner);
    ++queued;
  }
  return queued;
}

void HomeCleaner::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // Stopping, and nothing left.
    Job job = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    Remove(job);
    identities_.Release(job.session_id);
    lock.lock();
  }
}

namespace {

// Runs `argv` as `user`, through the handlers' spawner: its own process group, reaped however
// the worker's reapers race, with no_new_privs. Its complaints (which name entries the tenant
// chose, and must not reach the log raw) are read and dropped. Its wait status, or the reason
// it could not run.
absl::StatusOr<int> RunAs(const std::vector<std::string>& argv, const SessionUser& user) {
  auto child = SpawnHandler(argv, {"PATH=/usr/bin:/bin"}, "/", /*capture_stderr=*/true, user);
  if (!child.ok()) return child.status();
  close(child->stdin_fd);
  close(child->stdout_fd);  // Neither command writes there.
  fcntl(child->stderr_fd, F_SETFL, fcntl(child->stderr_fd, F_GETFL) & ~O_NONBLOCK);
  char drop[4096];
  for (ssize_t n; (n = read(child->stderr_fd, drop, sizeof(drop))) != 0;) {
    if (n < 0 && errno != EINTR) break;
  }
  close(child->stderr_fd);
  int status = 0;
  ReapHandler(child->pid, /*block=*/true, &status);
  return status;
}

}  // namespace

void HomeCleaner::Remove(const Job& job) {
  // As the session's uid: first every directory opened up to its owner (a tenant may leave one
  // read-only, which would keep rm from emptying it; chmod -R follows no link, and what it may
  // change is the tenant's own), then rm. --one-file-system: a mount the session could not have
  // made is never crossed anyway, but says what is meant.
  absl::StatusOr<int> status = RunAs({"/bin/chmod", "-R", "u+rwx", "--", job.home}, job.user);
  if (status.ok()) status = RunAs({"/bin/rm", "-rf", "--one-file-system", "--", job.home}, job.user);
  if (!status.ok()) {
    spdlog::warn("session {}: its home {} is left behind: {}", job.session_id, job.home, status.status().ToString());
    return;
  }
  // It empties the home but cannot unlink it from the worker's directory: the worker does, with
  // rmdir, which follows nothing and removes only an empty directory.
  if (rmdir(job.home.c_str()) != 0 && errno != ENOENT) {
    spdlog::warn("session {}: its home {} is left behind: {} (rm status {})", job.session_id, job.home,
                 std::strerror(errno), *status);
  }
}

}  // namespace gantry::worker
