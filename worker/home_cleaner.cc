#include "worker/home_cleaner.h"

#include <spdlog/spdlog.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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

void HomeCleaner::Remove(const Job& job) {
  // rm as the session's uid, through the handlers' spawner: its own process group, reaped
  // however the worker's reapers race, with no_new_privs. --one-file-system: a mount the
  // session could not have made is never crossed anyway, but says what is meant.
  // Its complaints (the one entry it cannot remove, the home itself, and any name the tenant
  // chose, which must not reach the log raw) are read and dropped.
  auto rm = SpawnHandler({"/bin/rm", "-rf", "--one-file-system", "--", job.home}, {"PATH=/usr/bin:/bin"}, "/",
                         /*capture_stderr=*/true, job.user);
  if (!rm.ok()) {
    spdlog::warn("session {}: its home {} is left behind: {}", job.session_id, job.home, rm.status().ToString());
    return;
  }
  close(rm->stdin_fd);
  close(rm->stdout_fd);  // rm -rf writes nothing there.
  fcntl(rm->stderr_fd, F_SETFL, fcntl(rm->stderr_fd, F_GETFL) & ~O_NONBLOCK);
  char drop[4096];
  for (ssize_t n; (n = read(rm->stderr_fd, drop, sizeof(drop))) != 0;) {
    if (n < 0 && errno != EINTR) break;
  }
  close(rm->stderr_fd);
  int status = 0;
  ReapHandler(rm->pid, /*block=*/true, &status);
  // It empties the home but cannot unlink it from the worker's directory: the worker does, with
  // rmdir, which follows nothing and removes only an empty directory.
  if (rmdir(job.home.c_str()) != 0 && errno != ENOENT) {
    spdlog::warn("session {}: its home {} is left behind: {} (rm status {})", job.session_id, job.home,
                 std::strerror(errno), status);
  }
}

}  // namespace gantry::worker
