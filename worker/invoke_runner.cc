#include "worker/invoke_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "worker/handler_process.h"

namespace gantry::worker {
namespace {

constexpr size_t kStderrTailBytes = 4096;
constexpr auto kPollStep = absl::Milliseconds(50);

int GrpcCode(absl::StatusCode code) { return static_cast<int>(code); }

std::string ExitText(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exited with code ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("was killed by signal ", WTERMSIG(status));
  return "ended";
}

}  // namespace

InvokeRunner::InvokeRunner(std::vector<CapabilityConfig> capabilities, Options options, Sender send)
    : options_(std::move(options)), send_(std::move(send)) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& c : capabilities) {
    Capability& cap = capabilities_[c.name];
    if (c.kind == CapabilityConfig::Kind::kPersistent) {
      std::vector<std::string> env = HandlerEnv(c.name, "");
      env.insert(env.end(), c.env.begin(), c.env.end());
      cap.persistent = std::make_unique<PersistentHandler>(c, std::move(env), options_.working_dir, options_.user);
    }
    cap.config = std::move(c);
  }
}

InvokeRunner::~InvokeRunner() {
  std::vector<std::shared_ptr<Invocation>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (auto& [id, inv] : running_) {
      inv->cancelled = true;
      KillHandler(inv->exec_pid);
      all.push_back(inv);
    }
    all.insert(all.end(), finished_.begin(), finished_.end());
  }
  cv_.notify_all();
  for (auto& inv : all) {
    if (inv->thread.joinable()) inv->thread.join();
  }
}

std::vector<std::string> InvokeRunner::HandlerEnv(const std::string& capability,
                                                  const std::string& invoke_id) const {
  const char* path = std::getenv("PATH");
  std::vector<std::string> env = {
      absl::StrCat("PATH=", path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin"),
      absl::StrCat("HOME=", options_.working_dir), "LANG=C.UTF-8",
      absl::StrCat("GANTRY_CAPABILITY=", capability)};
  if (!invoke_id.empty()) env.push_back(absl::StrCat("GANTRY_INVOKE_ID=", invoke_id));
  return env;
}

int InvokeRunner::active() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(running_.size());
}

void InvokeRunner::ReapFinished() {
  for (auto& inv : finished_) {
    if (inv->thread.joinable()) inv->thread.join();  // Already returning: joins at once.
  }
  finished_.clear();
}

void InvokeRunner::Finish(const std::shared_ptr<Invocation>& inv) {
  std::lock_guard<std::mutex> lock(mu_);
  if (running_.erase(inv->id) != 0) {
    auto cap = capabilities_.find(inv->capability);
    if (cap != capabilities_.end()) --cap->second.in_flight;
  }
  finished_.push_back(inv);
}

void InvokeRunner::SendError(const std::string& invoke_id, int code, const std::string& message) {
  v1::WorkerInvokeOutput out;
  out.set_invoke_id(invoke_id);
  out.set_error_code(code);
  out.set_error_message(message);
  send_(out);
}

bool InvokeRunner::SendChunk(Invocation& inv, std::string data, bool last) {
  v1::WorkerInvokeOutput out;
  out.set_invoke_id(inv.id);
  out.mutable_chunk()->set_data(std::move(data));
  out.mutable_chunk()->set_sequence(inv.sequence++);
  out.mutable_chunk()->set_last(last);
  return send_(out);
}

void InvokeRunner::Start(const v1::InvokeCommand& command) {
  // A refusal is sent after mu_ is released: the send can block on a controller that stopped
  // reading, and every running invocation takes mu_ for its credit.
  absl::Status refused = Admit(command);
  if (!refused.ok()) {
    SendError(command.invoke_id(), GrpcCode(refused.code()), std::string(refused.message()));
  }
}

absl::Status InvokeRunner::Admit(const v1::InvokeCommand& command) {
  const std::string& id = command.invoke_id();
  const std::string& name = command.request().capability();
  std::lock_guard<std::mutex> lock(mu_);
  ReapFinished();
  auto cap = capabilities_.find(name);
  if (stopping_) return absl::UnavailableError("the worker is stopping");
  if (draining_) return absl::UnavailableError("the worker is draining");
  if (cap == capabilities_.end()) return absl::NotFoundError(absl::StrCat("this worker has no capability ", name));
  if (running_.count(id) != 0) return absl::OkStatus();  // A repeated command: the first one runs.
  if (cap->second.in_flight >= options_.max_concurrency) {
    return absl::ResourceExhaustedError(absl::StrCat("capability ", name, " is busy: ", cap->second.in_flight,
                                                     " request(s) in flight on this worker, the most it takes"));
  }
  auto inv = std::make_shared<Invocation>();
  inv->id = id;
  inv->capability = name;
  inv->credit = std::max(0, command.credit());
  absl::Time deadline = command.has_deadline() ? FromProto(command.deadline()) : absl::InfiniteFuture();
  ++cap->second.in_flight;
  running_[id] = inv;
  if (cap->second.persistent != nullptr) {
    PersistentHandler* handler = cap->second.persistent.get();
    inv->thread = std::thread([this, handler, command, inv, deadline] {
      RunPersistent(*handler, command, inv, deadline);
      Finish(inv);
    });
  } else {
    inv->thread = std::thread([this, config = cap->second.config, command, inv, deadline] {
      RunExec(config, command, inv, deadline);
      Finish(inv);
    });
  }
  return absl::OkStatus();
}

void InvokeRunner::SetDraining(bool draining) {
  std::lock_guard<std::mutex> lock(mu_);
  draining_ = draining;
}

void InvokeRunner::AddCredit(const std::string& invoke_id, int credit) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = running_.find(invoke_id);
  if (it == running_.end() || credit <= 0) return;
  it->second->credit += credit;
  cv_.notify_all();
}

void InvokeRunner::Cancel(const std::string& invoke_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = running_.find(invoke_id);
  if (it == running_.end()) return;
  it->second->cancelled = true;
  KillHandler(it->second->exec_pid);  // At once: the client is gone.
  cv_.notify_all();
}

void InvokeRunner::CancelAll() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, inv] : running_) {
    inv->cancelled = true;
    KillHandler(inv->exec_pid);
  }
  cv_.notify_all();
}

void InvokeRunner::RunExec(const CapabilityConfig& capability, const v1::InvokeCommand& command,
                           std::shared_ptr<Invocation> inv, absl::Time deadline) {
  std::vector<std::string> env = HandlerEnv(capability.name, inv->id);
  env.insert(env.end(), capability.env.begin(), capability.env.end());
  auto process = SpawnHandler(capability.command, env, options_.working_dir, /*capture_stderr=*/true, options_.user);
  if (!process.ok()) {
    SendError(inv->id, GrpcCode(absl::StatusCode::kInternal),
              absl::StrCat("capability ", capability.name, ": ", process.status().message()));
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    inv->exec_pid = process->pid;
    if (inv->cancelled) KillHandler(process->pid);
  }
  const std::string& payload = command.request().payload();
  size_t written = 0;
  int in_fd = process->stdin_fd;
  fcntl(in_fd, F_SETFL, fcntl(in_fd, F_GETFL) | O_NONBLOCK);
  if (payload.empty()) {
    close(in_fd);
    in_fd = -1;
  }
  bool out_eof = false, err_eof = false, cancelled = false, late = false;
  std::string err_tail;
  std::string buf(options_.max_chunk_bytes, '\0');
  while (!(out_eof && err_eof)) {
    bool have_credit;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled = inv->cancelled;
      have_credit = inv->credit > 0;
    }
    if (cancelled) break;
    absl::Time now = absl::Now();
    if (now >= deadline) {
      late = true;
      break;
    }
    pollfd fds[3];
    int n = 0;
    int in_at = -1, out_at = -1, err_at = -1;
    if (in_fd >= 0) fds[in_at = n++] = {in_fd, POLLOUT, 0};
    // No credit, no reading: the handler blocks on its full pipe, which is the backpressure.
    if (!out_eof && have_credit) fds[out_at = n++] = {process->stdout_fd, POLLIN, 0};
    if (!err_eof) fds[err_at = n++] = {process->stderr_fd, POLLIN, 0};
    absl::Duration wait = std::min(kPollStep, deadline - now);
    if (poll(fds, static_cast<nfds_t>(n), static_cast<int>(absl::ToInt64Milliseconds(wait)) + 1) < 0 &&
        errno != EINTR) {
      break;
    }
    if (in_at >= 0 && fds[in_at].revents != 0) {
      ssize_t w = write(in_fd, payload.data() + written, payload.size() - written);
      if (w > 0) written += static_cast<size_t>(w);
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == payload.size()) {
        close(in_fd);  // All sent, or the handler closed its stdin: either way, end of input.
        in_fd = -1;
      }
    }
    if (out_at >= 0 && fds[out_at].revents != 0) {
      ssize_t r = read(process->stdout_fd, buf.data(), buf.size());
      if (r > 0) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          --inv->credit;
        }
        if (!SendChunk(*inv, buf.substr(0, static_cast<size_t>(r)), false)) {
          cancelled = true;
          break;
        }
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        out_eof = true;
      }
    }
    if (err_at >= 0 && fds[err_at].revents != 0) {
      ssize_t r = read(process->stderr_fd, buf.data(), buf.size());
      if (r > 0) {
        err_tail.append(buf.data(), static_cast<size_t>(r));
        if (err_tail.size() > kStderrTailBytes) err_tail.erase(0, err_tail.size() - kStderrTailBytes);
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        err_eof = true;
      }
    }
  }
  // Its output is complete (or nobody wants it): wait for the exit, bounded by the deadline.
  int status = 0;
  bool reaped = false;
  while (!cancelled && !late && !(reaped = ReapHandler(process->pid, false, &status))) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(10), [&] { return inv->cancelled; });
    cancelled = inv->cancelled;
    late = absl::Now() >= deadline;
  }
  KillHandler(process->pid);  // Whatever it left behind in its group goes too.
  if (!reaped) ReapHandler(process->pid, true, &status);
  for (int fd : {in_fd, process->stdout_fd, process->stderr_fd}) {
    if (fd >= 0) close(fd);
  }
  if (cancelled) return;  // Nobody is listening.
  if (late) {
    SendError(inv->id, GrpcCode(absl::StatusCode::kDeadlineExceeded),
              absl::StrCat("capability ", capability.name, " ran past the request's deadline; its handler was stopped"));
  } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    SendChunk(*inv, "", true);
  } else {
    SendError(inv->id, GrpcCode(absl::StatusCode::kUnknown),
              absl::StrCat("capability ", capability.name, ": handler ", ExitText(status),
                           err_tail.empty() ? "" : ": ", err_tail));
  }
}

void InvokeRunner::RunPersistent(PersistentHandler& handler, const v1::InvokeCommand& command,
                                 std::shared_ptr<Invocation> inv, absl::Time deadline) {
  const std::string& name = command.request().capability();
  auto sink = [this, inv](HandlerFrame frame) {
    std::lock_guard<std::mutex> lock(mu_);
    if (frame.kind == HandlerFrame::Kind::kChunk &&
        (inv->frames.size() >= options_.max_buffered_chunks ||
         inv->buffered_bytes + frame.data.size() > options_.max_buffered_bytes)) {
      inv->overflow = true;
    } else {
      inv->buffered_bytes += frame.data.size();
      inv->frames.push_back(std::move(frame));
    }
    cv_.notify_all();
  };
  if (absl::Status s = handler.Submit(inv->id, command.request().payload(), sink); !s.ok()) {
    SendError(inv->id, GrpcCode(s.code()), absl::StrCat("capability ", name, ": ", s.message()));
    return;
  }
  while (true) {
    std::unique_lock<std::mutex> lock(mu_);
    bool ready = cv_.wait_until(lock, absl::ToChronoTime(deadline), [&] {
      return inv->cancelled || inv->overflow ||
             (!inv->frames.empty() && (inv->frames.front().kind != HandlerFrame::Kind::kChunk || inv->credit > 0));
    });
    if (inv->cancelled) {
      lock.unlock();
      handler.Cancel(inv->id);
      return;
    }
    if (inv->overflow || !ready) {
      bool overflow = inv->overflow;
      lock.unlock();
      handler.Cancel(inv->id);
      if (overflow) {
        SendError(inv->id, GrpcCode(absl::StatusCode::kResourceExhausted),
                  absl::StrCat("capability ", name, ": the client read too slowly (more than ",
                               options_.max_buffered_chunks, " chunks or ", options_.max_buffered_bytes,
                               " bytes waiting); the request was cut off"));
      } else {
        SendError(inv->id, GrpcCode(absl::StatusCode::kDeadlineExceeded),
                  absl::StrCat("capability ", name, " ran past the request's deadline; the handler was told to cancel"));
      }
      return;
    }
    HandlerFrame frame = std::move(inv->frames.front());
    inv->frames.pop_front();
    inv->buffered_bytes -= frame.data.size();
    if (frame.kind == HandlerFrame::Kind::kChunk) --inv->credit;
    lock.unlock();
    switch (frame.kind) {
      case HandlerFrame::Kind::kChunk:
        if (!SendChunk(*inv, std::move(frame.data), false)) {
          handler.Cancel(inv->id);
          return;
        }
        break;
      case HandlerFrame::Kind::kEnd:
        SendChunk(*inv, "", true);
        return;
      case HandlerFrame::Kind::kError:
        SendError(inv->id, GrpcCode(frame.code), absl::StrCat("capability ", name, ": ", frame.data));
        return;
    }
  }
}

}  // namespace gantry::worker
