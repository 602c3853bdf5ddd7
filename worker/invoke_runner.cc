#include "worker/invoke_runner.h"

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"

namespace gantry::worker {
namespace {

// A pause well inside the bounds however they are set: a quarter of them at most.
PersistentLimits LimitsFor(const InvokeRunner::Options& options) {
  PersistentLimits limits;
  limits.max_buffered_chunks = options.max_buffered_chunks;
  limits.max_buffered_bytes = options.max_buffered_bytes;
  limits.pause_at_chunks = std::max<size_t>(1, std::min(limits.pause_at_chunks, limits.max_buffered_chunks / 4));
  limits.pause_at_bytes = std::max<size_t>(1, std::min(limits.pause_at_bytes, limits.max_buffered_bytes / 4));
  limits.resume_at_chunks = limits.pause_at_chunks / 4;
  limits.resume_at_bytes = limits.pause_at_bytes / 4;
  return limits;
}

}  // namespace

InvokeRunner::InvokeRunner(std::vector<CapabilityConfig> capabilities, Options options, Sender send)
    : options_(std::move(options)),
      exec_settings_{options_.use_pidfd, options_.max_chunk_bytes, options_.working_dir, options_.user},
      persistent_limits_(LimitsFor(options_)),
      send_(std::move(send)) {
  for (auto& c : capabilities) {
    Capability& cap = capabilities_[c.name];
    if (c.kind == CapabilityConfig::Kind::kPersistent) {
      std::vector<std::string> env = HandlerEnv(c.name, "");
      env.insert(env.end(), c.env.begin(), c.env.end());
      cap.persistent = std::make_unique<PersistentHandler>(c, std::move(env), options_.working_dir, options_.user);
      // Room for every job of every request admitted: it never refuses one.
      cap.writer = std::make_unique<WorkPool>(
          1, PersistentInvocation::kWriterJobsPerRequest * static_cast<size_t>(std::max(options_.max_concurrency, 1)));
    }
    cap.config = std::move(c);
  }
}

InvokeRunner::~InvokeRunner() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  loop_.Stop();
  // The loop's thread is gone: what it owned is this thread's now. Exec handlers are killed
  // and reaped as their invocations go.
  live_.clear();
  for (auto& [name, cap] : capabilities_) {
    if (cap.persistent == nullptr) continue;
    cap.persistent->Stop();  // A request being written to a handler that stopped reading fails.
    cap.writer->Stop();
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
  return static_cast<int>(admitted_.size());
}

void InvokeRunner::Start(const v1::InvokeCommand& command) {
  absl::Status refused = Admit(command);
  if (refused.ok()) {
    if (Begin(command)) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      admitted_.erase(command.invoke_id());
    }
    refused = absl::UnavailableError("the worker is stopping");
  } else if (refused.code() == absl::StatusCode::kAlreadyExists) {
    return;  // A repeated command: the first one runs.
  }
  // Sent from the loop, as every output is: a send may wait on the stream, which the caller
  // (the stream's reader) must not. A loop that has stopped runs nothing: sent here then.
  auto refuse = [this, id = command.invoke_id(), refused] {
    OutputSender(&send_, id).Error(refused.code(), std::string(refused.message()));
  };
  if (!loop_.Post(refuse)) refuse();
}

absl::Status InvokeRunner::Admit(const v1::InvokeCommand& command) {
  const std::string& id = command.invoke_id();
  const std::string& name = command.request().capability();
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return absl::UnavailableError("the worker is stopping");
  if (draining_) return absl::UnavailableError("the worker is draining");
  auto cap = capabilities_.find(name);
  if (cap == capabilities_.end()) return absl::NotFoundError(absl::StrCat("this worker has no capability ", name));
  if (admitted_.count(id) != 0) return absl::AlreadyExistsError(id);
  if (cap->second.in_flight >= options_.max_concurrency) {
    return absl::ResourceExhaustedError(absl::StrCat("capability ", name, " is busy: ", cap->second.in_flight,
                                                     " request(s) in flight on this worker, the most it takes"));
  }
  ++cap->second.in_flight;
  admitted_[id] = name;
  return absl::OkStatus();
}

bool InvokeRunner::Begin(const v1::InvokeCommand& command) {
  const std::string& id = command.invoke_id();
  const Capability& cap = capabilities_.at(command.request().capability());
  if (cap.persistent == nullptr) return loop_.Post([this, command] { BeginExec(command); });
  const absl::Time deadline = command.has_deadline() ? FromProto(command.deadline()) : absl::InfiniteFuture();
  auto invocation = std::make_shared<PersistentInvocation>(
      &loop_, &send_, id, cap.config.name, cap.persistent.get(), cap.writer.get(), persistent_limits_,
      ChunkCredit(command.credit(), command.credit_bytes()), [this, id] { Ended(id); });
  // The loop has it before the handler can answer: the answer's Drain is posted after this.
  if (!loop_.Post([this, id, invocation, deadline] {
        live_[id] = invocation;
        invocation->ArmDeadline(deadline);
      })) {
    return false;
  }
  invocation->Submit(command.request().payload());
  return true;
}

void InvokeRunner::BeginExec(const v1::InvokeCommand& command) {
  const std::string& id = command.invoke_id();
  const Capability& cap = capabilities_.at(command.request().capability());
  const absl::Time deadline = command.has_deadline() ? FromProto(command.deadline()) : absl::InfiniteFuture();
  auto invocation =
      std::make_shared<ExecInvocation>(&loop_, &send_, id, cap.config, exec_settings_, [this, id] { Ended(id); });
  live_[id] = invocation;
  std::vector<std::string> env = HandlerEnv(cap.config.name, id);
  env.insert(env.end(), cap.config.env.begin(), cap.config.env.end());
  invocation->Begin(env, command.request().payload(), ChunkCredit(command.credit(), command.credit_bytes()), deadline);
}

void InvokeRunner::Ended(const std::string& invoke_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = admitted_.find(invoke_id);
    if (it != admitted_.end()) {
      --capabilities_.at(it->second).in_flight;
      admitted_.erase(it);
    }
  }
  // Called from inside the invocation: it goes once that call has returned.
  loop_.Post([this, invoke_id] { live_.erase(invoke_id); });
}

void InvokeRunner::SetDraining(bool draining) {
  std::lock_guard<std::mutex> lock(mu_);
  draining_ = draining;
}

void InvokeRunner::AddCredit(const std::string& invoke_id, int64_t chunks, int64_t bytes) {
  if (chunks <= 0 && bytes <= 0) return;
  loop_.Post([this, invoke_id, chunks, bytes] {
    auto it = live_.find(invoke_id);
    if (it != live_.end()) it->second->AddCredit(chunks, bytes);
  });
}

void InvokeRunner::Cancel(const std::string& invoke_id) {
  loop_.Post([this, invoke_id] {
    auto it = live_.find(invoke_id);
    if (it != live_.end()) it->second->Cancel();
  });
}

void InvokeRunner::CancelAll() {
  loop_.Post([this] {
    // Cancel may end an invocation, which only posts its removal: the map holds still here.
    for (auto& [id, invocation] : live_) invocation->Cancel();
  });
}

}  // namespace gantry::worker
