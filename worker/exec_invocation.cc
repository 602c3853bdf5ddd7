#include "worker/exec_invocation.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "worker/handler_process.h"

namespace gantry::worker {
namespace {

constexpr size_t kStderrTailBytes = 4096;
// The session supervisor's reaper may reap a handler first and hand its status over a moment
// later (handler_children.h): once the handler is known to have exited, the owner looks again
// this often, this many times (10 s).
constexpr absl::Duration kReapRetry = absl::Milliseconds(5);
constexpr int kReapTries = 2000;
// Without a pidfd the handler may still be running when its output ends: looked for this often.
constexpr absl::Duration kReapPoll = absl::Milliseconds(10);

// pidfd_open(2), where the kernel has it and no seccomp filter refuses it.
int OpenPidfd(pid_t pid) {
  const int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0 && errno != ESRCH) {
    static std::once_flag warned;
    const int error = errno;
    std::call_once(warned, [error] {
      spdlog::warn("pidfd_open: {}; handlers' exits are looked for by polling once their output ends",
                   std::strerror(error));
    });
  }
  return fd;
}

// -1: reaped by someone who never handed the status over.
std::string ExitText(int status) {
  if (status == -1) return "ended (its exit status was lost)";
  if (WIFEXITED(status)) return absl::StrCat("exited with code ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("was killed by signal ", WTERMSIG(status));
  return "ended";
}

}  // namespace

ExecInvocation::ExecInvocation(EventLoop* loop, const Send* send, std::string id, const CapabilityConfig& capability,
                               const ExecSettings& settings, std::function<void()> ended)
    : loop_(loop), out_(send, std::move(id)), capability_(capability), settings_(settings), ended_(std::move(ended)) {}

ExecInvocation::~ExecInvocation() {
  loop_->CancelTimer(deadline_timer_);
  loop_->CancelTimer(reap_timer_);
  for (int* fd : {&stdin_fd_, &stdout_fd_, &stderr_fd_, &pidfd_}) CloseFd(fd);
  if (pid_ > 0 && !reaped_) {
    KillHandler(pid_);
    int status;
    ReapHandler(pid_, /*block=*/true, &status);
  }
}

void ExecInvocation::Begin(const std::vector<std::string>& env, std::string payload, ChunkCredit credit,
                           absl::Time deadline) {
  credit_ = credit;
  auto process = SpawnHandler(capability_.command, env, settings_.working_dir, /*capture_stderr=*/true, settings_.user);
  if (!process.ok()) {
    out_.Error(absl::StatusCode::kInternal, absl::StrCat("capability ", capability_.name, ": ", process.status().message()));
    ended_called_ = true;
    ended_();
    return;
  }
  pid_ = process->pid;
  stdin_fd_ = process->stdin_fd;
  stdout_fd_ = process->stdout_fd;
  stderr_fd_ = process->stderr_fd;
  // Opened at once: until the handler is reaped its pid cannot name another process.
  pidfd_ = settings_.use_pidfd ? OpenPidfd(pid_) : -1;
  const bool reaped_already = pidfd_ < 0 && errno == ESRCH && settings_.use_pidfd;  // By the supervisor's reaper.
  payload_ = std::move(payload);
  fcntl(stdin_fd_, F_SETFL, fcntl(stdin_fd_, F_GETFL) | O_NONBLOCK);
  if (payload_.empty()) CloseFd(&stdin_fd_);
  bool watched = (stdin_fd_ < 0 || loop_->Watch(stdin_fd_, EPOLLOUT, [this](uint32_t) { OnStdin(); })) &&
                 (!credit_.CanSend() || WatchStdout()) &&
                 loop_->Watch(stderr_fd_, EPOLLIN, [this](uint32_t) { OnStderr(); }) &&
                 (pidfd_ < 0 || loop_->Watch(pidfd_, EPOLLIN, [this](uint32_t) { OnExit(); }));
  if (!watched) {
    out_.Error(absl::StatusCode::kResourceExhausted,
               absl::StrCat("capability ", capability_.name, ": the worker cannot watch one more handler's pipes"));
    StopHandler(Stop::kCancelled);
    return;
  }
  if (reaped_already) StartReaping(/*exited=*/true);
  if (deadline != absl::InfiniteFuture()) {
    deadline_timer_ = loop_->After(deadline - absl::Now(), [this] {
      deadline_timer_ = 0;
      OnDeadline();
    });
  }
}

void ExecInvocation::AddCredit(int64_t chunks, int64_t bytes) {
  credit_.Add(chunks, bytes);
  if (!reading_stdout_ && stdout_fd_ >= 0 && credit_.CanSend() && !WatchStdout()) {
    out_.Error(absl::StatusCode::kResourceExhausted,
               absl::StrCat("capability ", capability_.name, ": the worker cannot watch one more handler's pipes"));
    StopHandler(Stop::kCancelled);
  }
}

void ExecInvocation::Cancel() { StopHandler(Stop::kCancelled); }

void ExecInvocation::OnDeadline() { StopHandler(Stop::kLate); }

void ExecInvocation::StopHandler(Stop why) {
  if (stop_ != Stop::kNone || ended_called_) return;
  stop_ = why;
  KillHandler(pid_);
  for (int* fd : {&stdin_fd_, &stdout_fd_, &stderr_fd_}) CloseFd(fd);
  if (pidfd_ < 0) StartReaping(/*exited=*/false);  // Killed: its exit comes at once.
  MaybeEnd();
}

void ExecInvocation::OnStdin() {
  ssize_t w = write(stdin_fd_, payload_.data() + written_, payload_.size() - written_);
  if (w > 0) written_ += static_cast<size_t>(w);
  if ((w < 0 && errno != EAGAIN && errno != EINTR) || written_ == payload_.size()) {
    CloseFd(&stdin_fd_);  // All sent, or the handler closed its stdin: either way, end of input.
    payload_.clear();
  }
}

void ExecInvocation::OnStdout() {
  // One buffer for every invocation on the loop's thread: a chunk is copied out at its size.
  thread_local std::string scratch;
  scratch.resize(credit_.ReadSize(settings_.max_chunk_bytes));
  ssize_t r = read(stdout_fd_, scratch.data(), scratch.size());
  if (r > 0) {
    credit_.Spend(static_cast<size_t>(r));
    if (!credit_.CanSend()) {
      // Not watched at all, not merely for nothing: epoll reports a hang-up whatever it is
      // asked for, and a handler that exits with output still in the pipe would have it read
      // (and sent) beyond the credit.
      reading_stdout_ = false;
      loop_->Unwatch(stdout_fd_);
    }
    if (!out_.Chunk(scratch.substr(0, static_cast<size_t>(r)), false)) StopHandler(Stop::kCancelled);  // Stream gone.
    return;
  }
  if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
    CloseFd(&stdout_fd_);
    MaybeEnd();
  }
}

bool ExecInvocation::WatchStdout() {
  reading_stdout_ = loop_->Watch(stdout_fd_, EPOLLIN, [this](uint32_t) { OnStdout(); });
  return reading_stdout_;
}

void ExecInvocation::OnStderr() {
  char buf[4096];
  ssize_t r = read(stderr_fd_, buf, sizeof(buf));
  if (r > 0) {
    err_tail_.append(buf, static_cast<size_t>(r));
    if (err_tail_.size() > kStderrTailBytes) err_tail_.erase(0, err_tail_.size() - kStderrTailBytes);
    return;
  }
  if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
    CloseFd(&stderr_fd_);
    MaybeEnd();
  }
}

void ExecInvocation::OnExit() {
  CloseFd(&pidfd_);
  // Not reaped yet, its pid names only its group: whatever it left there goes now. What it
  // wrote stays readable in the pipes.
  KillHandler(pid_);
  StartReaping(/*exited=*/true);
}

void ExecInvocation::StartReaping(bool exited) {
  exited_ = exited_ || exited;
  if (reaping_) return;
  reaping_ = true;
  TryReap();
}

void ExecInvocation::TryReap() {
  reap_timer_ = 0;
  if (ReapHandler(pid_, /*block=*/false, &wait_status_)) {
    reaped_ = true;
    MaybeEnd();
    return;
  }
  if (!exited_) {
    // No pidfd: it may still be running (it closed its output and carries on); its deadline
    // or a cancel kills it if it never ends.
    reap_timer_ = loop_->After(kReapPoll, [this] { TryReap(); });
    return;
  }
  if (++reap_tries_ >= kReapTries) {
    // Reaped by someone who never handed the status over: the exit is unknown, not waited for
    // forever.
    reaped_ = true;
    wait_status_ = -1;
    MaybeEnd();
    return;
  }
  reap_timer_ = loop_->After(kReapRetry, [this] { TryReap(); });
}

void ExecInvocation::MaybeEnd() {
  if (!reaped_ && pidfd_ < 0 && stdout_fd_ < 0 && stderr_fd_ < 0) StartReaping(/*exited=*/false);
  if (ended_called_ || !reaped_) return;
  if (stop_ == Stop::kNone && (stdout_fd_ >= 0 || stderr_fd_ >= 0)) return;  // Output still to read.
  ended_called_ = true;
  loop_->CancelTimer(deadline_timer_);
  deadline_timer_ = 0;
  CloseFd(&stdin_fd_);
  switch (stop_) {
    case Stop::kCancelled:
      break;  // Nobody is listening.
    case Stop::kLate:
      out_.Error(absl::StatusCode::kDeadlineExceeded,
                 absl::StrCat("capability ", capability_.name, " ran past the request's deadline; its handler was stopped"));
      break;
    case Stop::kNone:
      if (wait_status_ != -1 && WIFEXITED(wait_status_) && WEXITSTATUS(wait_status_) == 0) {
        out_.Chunk("", true);
      } else {
        out_.Error(absl::StatusCode::kUnknown,
                   absl::StrCat("capability ", capability_.name, ": handler ", ExitText(wait_status_),
                                err_tail_.empty() ? "" : ": ", err_tail_));
      }
      break;
  }
  ended_();
}

void ExecInvocation::CloseFd(int* fd) {
  if (*fd < 0) return;
  loop_->Unwatch(*fd);
  close(*fd);
  *fd = -1;
}

}  // namespace gantry::worker
