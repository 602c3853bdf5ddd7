#include "worker/persistent_handler.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "worker/handler_process.h"

namespace gantry::worker {
namespace {

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exited with code ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("was killed by signal ", WTERMSIG(status));
  return "ended";
}

}  // namespace

PersistentHandler::PersistentHandler(CapabilityConfig capability, std::vector<std::string> env,
                                     std::string working_dir, SessionUser user)
    : capability_(std::move(capability)),
      env_(std::move(env)),
      working_dir_(std::move(working_dir)),
      user_(std::move(user)) {}

PersistentHandler::~PersistentHandler() {
  Stop();
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
}

void PersistentHandler::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = true;
  KillHandler(pid_);
}

pid_t PersistentHandler::pid() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pid_;
}

absl::Status PersistentHandler::EnsureRunning(std::unique_lock<std::mutex>& lock) {
  started_cv_.wait(lock, [&] { return !starting_; });  // One start at a time.
  if (pid_ > 0) return absl::OkStatus();
  if (stopping_) return absl::UnavailableError("the worker is stopping");
  // Finished generations' threads have returned: join them here, off the hot path.
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  auto started = std::make_shared<std::promise<absl::Status>>();
  auto result = started->get_future();
  const uint64_t generation = ++generation_;
  starting_ = true;
  // The process is started by the thread that reads it: PDEATHSIG is tied to the thread that
  // forked, and this one lives exactly as long as the process.
  threads_.emplace_back([this, generation, started] { Serve(generation, started); });
  lock.unlock();
  absl::Status s = result.get();
  lock.lock();
  starting_ = false;
  started_cv_.notify_all();
  return s;
}

void PersistentHandler::Serve(uint64_t generation, std::shared_ptr<std::promise<absl::Status>> started) {
  auto process = SpawnHandler(capability_.command, env_, working_dir_, /*capture_stderr=*/false, user_);
  if (!process.ok()) {
    started->set_value(process.status());
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    pid_ = process->pid;
    stdin_fd_ = process->stdin_fd;
  }
  spdlog::info("capability {}: persistent handler started as pid {}", capability_.name, process->pid);
  started->set_value(absl::OkStatus());

  HandlerFrameParser parser;
  std::string why;
  bool reaped = false;
  char chunk[64 * 1024];
  while (why.empty()) {
    for (;;) {
      auto next = parser.Next();
      if (!next.ok()) {
        why = std::string(next.status().message());
        break;
      }
      if (!next->has_value()) break;
      HandlerFrameParser::Parsed& parsed = **next;
      if (parsed.frame.kind == HandlerFrame::Kind::kHello) {
        const std::vector<absl::string_view> features = absl::StrSplit(parsed.frame.data, ' ');
        std::lock_guard<std::mutex> lock(mu_);
        if (generation == generation_) pauses_ = absl::c_linear_search(features, "pause");
        continue;
      }
      Sink sink;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = sinks_.find(parsed.id);
        if (it == sinks_.end()) continue;  // Cancelled, or an id it made up: dropped.
        sink = it->second;
        if (parsed.frame.kind != HandlerFrame::Kind::kChunk) sinks_.erase(it);
      }
      sink(std::move(parsed.frame));
    }
    if (!why.empty()) break;
    ssize_t n = read(process->stdout_fd, chunk, sizeof(chunk));
    if (n > 0) {
      parser.Append(chunk, static_cast<size_t>(n));
    } else if (n == 0) {
      int status = 0;
      reaped = ReapHandler(process->pid, /*block=*/true, &status);
      why = DescribeExit(status);
    } else if (errno == EAGAIN) {
      pollfd pfd = {process->stdout_fd, POLLIN, 0};
      poll(&pfd, 1, 200);
    } else if (errno != EINTR) {
      why = absl::StrCat("could not be read: ", std::strerror(errno));
    }
  }
  KillHandler(process->pid);  // Whatever it left behind in its group goes too.
  if (!reaped) {
    int status;
    ReapHandler(process->pid, /*block=*/true, &status);
  }
  close(process->stdout_fd);
  Lost(generation, why);
}

void PersistentHandler::Lost(uint64_t generation, const std::string& why) {
  std::map<std::string, Sink> orphans;
  {
    std::lock_guard<std::mutex> write_lock(write_mu_);  // No write is using the fd.
    std::lock_guard<std::mutex> lock(mu_);
    if (generation != generation_) return;
    pid_ = -1;
    pauses_ = false;  // The next process says for itself.
    last_end_ = why;
    if (stdin_fd_ >= 0) close(stdin_fd_);
    stdin_fd_ = -1;
    orphans.swap(sinks_);
  }
  if (!orphans.empty() || why.find("exited") == std::string::npos) {
    spdlog::warn("capability {}: persistent handler {}; {} request(s) failed", capability_.name, why,
                 orphans.size());
  }
  for (auto& [id, sink] : orphans) {
    sink(HandlerFrame{HandlerFrame::Kind::kError, absl::StrCat("the ", capability_.name, " handler ", why),
                      absl::StatusCode::kUnavailable});
  }
}

bool PersistentHandler::WriteFrame(uint64_t generation, const std::string& frame) {
  std::lock_guard<std::mutex> write_lock(write_mu_);
  int fd;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (generation != generation_ || stdin_fd_ < 0) return false;
    fd = stdin_fd_;
  }
  // One write per frame under write_mu_, so frames of concurrent requests never interleave.
  size_t done = 0;
  while (done < frame.size()) {
    ssize_t n = write(fd, frame.data() + done, frame.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && errno != EINTR) {
      return false;
    }
  }
  return true;
}

absl::Status PersistentHandler::Submit(const std::string& id, const std::string& payload, Sink sink) {
  uint64_t generation;
  auto gone = [&] { return absl::UnavailableError(absl::StrCat("the ", capability_.name, " handler ", last_end_)); };
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (absl::Status s = EnsureRunning(lock); !s.ok()) return s;
    if (pid_ <= 0) return gone();  // Started, and already gone again.
    sinks_[id] = std::move(sink);
    generation = generation_;
  }
  if (!WriteFrame(generation, absl::StrCat("REQ ", id, " ", payload.size(), "\n", payload))) {
    std::lock_guard<std::mutex> lock(mu_);
    if (generation == generation_ && pid_ > 0) {
      // It closed its stdin: its reader thread fails the request through the sink, with what it
      // finds (what the handler wrote, or how it ended).
      KillHandler(pid_);
      return absl::OkStatus();
    }
    // It is gone already; if its end came before the sink was registered, say so here.
    if (sinks_.erase(id) != 0) return gone();
  }
  return absl::OkStatus();
}

void PersistentHandler::Cancel(const std::string& id) {
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (sinks_.erase(id) == 0) return;
    generation = generation_;
  }
  (void)WriteFrame(generation, absl::StrCat("CANCEL ", id, "\n"));
}

bool PersistentHandler::Pause(const std::string& id, bool pause) {
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!pauses_ || sinks_.count(id) == 0) return false;
    generation = generation_;
  }
  return WriteFrame(generation, absl::StrCat(pause ? "PAUSE " : "RESUME ", id, "\n"));
}

}  // namespace gantry::worker
