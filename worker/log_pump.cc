#include "worker/log_pump.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace gantry::worker {
namespace {

constexpr size_t kReadBytes = 64 * 1024;
// Reads per wake-up for one pipe, so that one chatty session cannot starve the others.
constexpr int kReadsPerTurn = 4;

}  // namespace

LogPump::LogPump(size_t ring_bytes, int64_t max_file_bytes, size_t keep_finished)
    : ring_bytes_(ring_bytes),
      max_file_bytes_(max_file_bytes),
      keep_finished_(keep_finished),
      epoll_fd_(epoll_create1(EPOLL_CLOEXEC)),
      wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (epoll_fd_ < 0 || wake_fd_ < 0) {
    spdlog::critical("log pump: cannot create epoll/eventfd: {}", std::strerror(errno));
    std::abort();  // Without it no session's output could be captured.
  }
  epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.fd = wake_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  thread_ = std::thread([this] { Loop(); });
}

LogPump::~LogPump() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  uint64_t one = 1;
  if (write(wake_fd_, &one, sizeof(one)) < 0) {
    // The eventfd cannot be full; nothing to do.
  }
  thread_.join();
  for (auto& [fd, source] : sources_) close(fd);
  close(wake_fd_);
  close(epoll_fd_);
}

absl::StatusOr<int> LogPump::Open(const std::string& session_id, const std::string& path) {
  auto log = SessionLog::Create(path, ring_bytes_, max_file_bytes_);
  if (!log.ok()) return log.status();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return absl::ResourceExhaustedError(absl::StrCat("cannot create the output pipe: ", std::strerror(errno)));
  }
  // Only the pump's end is non-blocking: a session outrunning the pump waits, it is not failed.
  fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
  std::lock_guard<std::mutex> lock(mu_);
  epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.fd = fds[0];
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fds[0], &ev) != 0) {
    int err = errno;
    close(fds[0]);
    close(fds[1]);
    return absl::ResourceExhaustedError(absl::StrCat("cannot watch the output pipe: ", std::strerror(err)));
  }
  sources_[fds[0]] = Source{session_id, *log};
  logs_[session_id] = *log;
  return fds[1];
}

std::shared_ptr<SessionLog> LogPump::Find(const std::string& session_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = logs_.find(session_id);
  return it == logs_.end() ? nullptr : it->second;
}

bool LogPump::Drain(int fd, SessionLog& log) {
  char buf[kReadBytes];
  for (int i = 0; i < kReadsPerTurn; ++i) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) {
      log.Append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      return false;
    } else if (errno == EAGAIN) {
      return true;
    } else if (errno != EINTR) {
      spdlog::warn("log pump: reading a session's output: {}", std::strerror(errno));
      return false;
    }
  }
  return true;
}

void LogPump::Finish(int fd) {
  auto it = sources_.find(fd);
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  close(fd);
  it->second.log->Close();
  finished_.push_back(it->second.session_id);
  sources_.erase(it);
  while (finished_.size() > keep_finished_) {
    auto old = logs_.find(finished_.front());
    if (old != logs_.end() && old->second->closed()) logs_.erase(old);
    finished_.pop_front();
  }
}

void LogPump::Loop() {
  epoll_event events[64];
  while (true) {
    int n = epoll_wait(epoll_fd_, events, 64, -1);
    if (n < 0 && errno != EINTR) {
      spdlog::critical("log pump: epoll_wait: {}", std::strerror(errno));
      std::abort();
    }
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      std::shared_ptr<SessionLog> log;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (fd == wake_fd_ && stopping_) return;
        auto it = sources_.find(fd);
        if (it == sources_.end()) continue;
        log = it->second.log;
      }
      if (!Drain(fd, *log)) {
        std::lock_guard<std::mutex> lock(mu_);
        Finish(fd);
      }
    }
  }
}

}  // namespace gantry::worker
