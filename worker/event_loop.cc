#include "worker/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/time/clock.h"

namespace gantry::worker {
namespace {

constexpr int kMaxEvents = 64;

// A broken invariant or start (no epoll, no eventfd): the worker cannot serve a single invoke.
[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "event loop: %s: %s\n", what, std::strerror(errno));
  std::abort();
}

uint64_t Key(uint32_t generation, int fd) { return (static_cast<uint64_t>(generation) << 32) | static_cast<uint32_t>(fd); }

}  // namespace

EventLoop::EventLoop() : epoll_fd_(epoll_create1(EPOLL_CLOEXEC)), wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  // Without them the worker cannot serve a single invoke: a broken start, not a status.
  if (epoll_fd_ < 0 || wake_fd_ < 0) Die("epoll_create1 or eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;  // Generation 0: the wake fd.
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) Die("epoll_ctl (the wake fd)");
  std::mutex started;
  started.lock();
  thread_ = std::thread([this, &started] {
    thread_id_ = std::this_thread::get_id();
    started.unlock();
    Run();
  });
  started.lock();  // thread_id_ is set before anyone asks InLoop.
  started.unlock();
}

EventLoop::~EventLoop() {
  Stop();
  close(wake_fd_);
  close(epoll_fd_);
}

bool EventLoop::Post(std::function<void()> task) {
  bool nudge = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    nudge = tasks_.empty();  // Otherwise a nudge is on its way already, for the same batch.
    tasks_.push_back(std::move(task));
  }
  if (nudge) {
    uint64_t one = 1;
    while (write(wake_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
  }
  return true;
}

void EventLoop::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  uint64_t one = 1;
  while (write(wake_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
  if (thread_.joinable()) thread_.join();
}

bool EventLoop::Watch(int fd, uint32_t events, FdCallback callback) {
  const uint32_t generation = next_generation_++;
  if (next_generation_ == 0) next_generation_ = 1;  // 0 is the wake fd's.
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = Key(generation, fd);
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) return false;
  watched_[fd] = Watched{generation, std::move(callback)};
  return true;
}

void EventLoop::Change(int fd, uint32_t events) {
  auto it = watched_.find(fd);
  if (it == watched_.end()) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = Key(it->second.generation, fd);
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) != 0) Die("epoll_ctl (a watched fd)");
}

void EventLoop::Unwatch(int fd) {
  if (watched_.erase(fd) == 0) return;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
}

EventLoop::TimerId EventLoop::After(absl::Duration delay, std::function<void()> callback) {
  const TimerId id = next_timer_++;
  const absl::Time at = absl::Now() + delay;
  due_.emplace(at, id);
  timers_.emplace(id, std::make_pair(at, std::move(callback)));
  return id;
}

void EventLoop::CancelTimer(TimerId id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return;
  auto [first, last] = due_.equal_range(it->second.first);
  for (auto d = first; d != last; ++d) {
    if (d->second == id) {
      due_.erase(d);
      break;
    }
  }
  timers_.erase(it);
}

int EventLoop::MillisToNextTimer() const {
  if (due_.empty()) return -1;
  const absl::Duration wait = due_.begin()->first - absl::Now();
  if (wait <= absl::ZeroDuration()) return 0;
  return static_cast<int>(absl::ToInt64Milliseconds(absl::Ceil(wait, absl::Milliseconds(1))));
}

void EventLoop::RunTasks() {
  uint64_t count;
  while (read(wake_fd_, &count, sizeof(count)) < 0 && errno == EINTR) {
  }
  std::deque<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(tasks_);
  }
  for (auto& task : batch) task();
}

void EventLoop::RunDueTimers() {
  const absl::Time now = absl::Now();
  while (!due_.empty() && due_.begin()->first <= now) {
    const TimerId id = due_.begin()->second;
    due_.erase(due_.begin());
    auto it = timers_.find(id);
    std::function<void()> callback = std::move(it->second.second);
    timers_.erase(it);
    callback();
  }
}

void EventLoop::Run() {
  epoll_event events[kMaxEvents];
  while (true) {
    const int n = epoll_wait(epoll_fd_, events, kMaxEvents, MillisToNextTimer());
    if (n < 0 && errno != EINTR) Die("epoll_wait");
    bool woken = false;
    for (int i = 0; i < n; ++i) {
      const uint64_t key = events[i].data.u64;
      const uint32_t generation = static_cast<uint32_t>(key >> 32);
      if (generation == 0) {
        woken = true;
        continue;
      }
      const int fd = static_cast<int>(static_cast<uint32_t>(key));
      auto it = watched_.find(fd);
      // Unwatched by an earlier callback of this batch (and perhaps its number reused since).
      if (it == watched_.end() || it->second.generation != generation) continue;
      FdCallback callback = it->second.callback;  // A copy: the callback may Unwatch itself.
      callback(events[i].events);
    }
    RunDueTimers();
    if (woken) {
      RunTasks();
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ && tasks_.empty()) return;
    }
  }
}

}  // namespace gantry::worker
