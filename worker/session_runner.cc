#include "worker/session_runner.h"

#include <spdlog/spdlog.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/proto_time.h"
#include "worker/log_streamer.h"

namespace gantry::worker {

SessionRunner::SessionRunner(std::string session_dir, std::string keeper_path, LogPump& pump,
                             const SessionCgroups& cgroups, SessionIdentities& identities, EventSink sink)
    : session_dir_(std::move(session_dir)),
      pump_(pump),
      cgroups_(cgroups),
      identities_(identities),
      sink_(std::move(sink)),
      cleaner_(identities),
      supervisor_([this](const ExitInfo& exit) { OnExit(exit); }, std::move(keeper_path)) {
  idle_thread_ = std::thread([this] { IdleLoop(); });
  // Homes of sessions that died with an earlier run of this worker (no session is live yet).
  if (int n = cleaner_.SweepLeftovers(session_dir_); n > 0) {
    spdlog::info("removing {} home(s) left behind by sessions that ended with the last run", n);
  }
}

SessionRunner::~SessionRunner() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  idle_cv_.notify_all();
  idle_thread_.join();
}

void SessionRunner::IdleLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!idle_cv_.wait_for(lock, std::chrono::milliseconds(250), [&] { return stopping_; })) {
    std::vector<std::pair<std::string, absl::Duration>> idle_now;
    absl::Time now = absl::Now();
    for (auto& [id, idle] : idle_) {
      absl::Time active = idle.armed;
      if (auto log = pump_.Find(id)) active = std::max(active, log->last_output());
      if (now - active >= idle.timeout) idle_now.emplace_back(id, idle.timeout);
    }
    for (const auto& [id, timeout] : idle_now) idle_.erase(id);  // Re-armed on wake.
    lock.unlock();
    for (const auto& [id, timeout] : idle_now) {
      Suspend(id, absl::StrCat("idle: no output for ", absl::FormatDuration(timeout)));
    }
    lock.lock();
  }
}

absl::StatusOr<std::string> SessionRunner::MakeHome(const std::string& session_id, const SessionUser& user) const {
  return MakeOwnHome(absl::StrCat(session_dir_, "/", session_id), user);
}

std::vector<std::string> SessionRunner::BuildEnv(const v1::StartSessionCommand& c, const std::string& home) const {
  std::vector<std::string> env;
  const char* path = std::getenv("PATH");
  env.push_back(absl::StrCat("PATH=", path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin"));
  env.push_back(absl::StrCat("HOME=", home));
  env.push_back("LANG=C.UTF-8");
  env.push_back(absl::StrCat("GANTRY_SESSION_ID=", c.session_id()));
  for (const auto& [k, v] : c.spec().env()) {
    if (k == "CUDA_VISIBLE_DEVICES" || k == "NVIDIA_VISIBLE_DEVICES" || k == "PATH" ||
        k == "GANTRY_SESSION_ID") {
      continue;
    }
    env.push_back(absl::StrCat(k, "=", v));
  }
  // The process sees exactly its GPUs; with none, it sees none (not all of them).
  std::string gpus = c.gpu_uuids().empty() ? "" : absl::StrJoin(c.gpu_uuids(), ",");
  env.push_back(absl::StrCat("CUDA_VISIBLE_DEVICES=", gpus));
  env.push_back(absl::StrCat("NVIDIA_VISIBLE_DEVICES=", gpus.empty() ? "none" : gpus));
  return env;
}

void SessionRunner::ReportStartFailure(const std::string& session_id, const std::string& why) {
  v1::WorkerSessionEvent event;
  event.set_session_id(session_id);
  ToProto(absl::Now(), event.mutable_time());
  event.set_kind(v1::WorkerSessionEvent::KIND_START_FAILED);
  event.set_message(why);
  // The session's log says why, for whoever reads it with StreamLogs.
  if (auto log = pump_.Find(session_id)) log->AppendNote("gantry: session did not start: " + why + "\n");
  {
    std::lock_guard<std::mutex> lock(mu_);
    gpus_.erase(session_id);
    idle_.erase(session_id);
    timeouts_.erase(session_id);
  }
  cgroups_.Remove(session_id);
  spdlog::warn("session {} failed to start: {}", session_id, why);
  sink_(event);
}

void SessionRunner::Start(const v1::StartSessionCommand& c) {
  if (!IsSafeSessionId(c.session_id())) {
    // It becomes a file name: refuse anything that could leave the session directory.
    v1::WorkerSessionEvent refused;
    refused.set_session_id(c.session_id());
    refused.set_kind(v1::WorkerSessionEvent::KIND_START_FAILED);
    refused.set_message("session_id: not a session id");
    sink_(refused);
    return;
  }
  // Other sessions start meanwhile; this one's exit waits until its start is reported.
  {
    std::lock_guard<std::mutex> lock(mu_);
    starting_.insert(c.session_id());
  }
  StartNow(c);
  {
    std::lock_guard<std::mutex> lock(mu_);
    starting_.erase(c.session_id());
  }
  started_.notify_all();
}

void SessionRunner::StartNow(const v1::StartSessionCommand& c) {
  v1::WorkerSessionEvent event;
  event.set_session_id(c.session_id());
  ToProto(absl::Now(), event.mutable_time());
  // A retried start for a session that already runs is answered with the running pid (and
  // must not touch its log).
  for (const auto& p : supervisor_.List()) {
    if (p.session_id == c.session_id()) {
      event.set_kind(v1::WorkerSessionEvent::KIND_STARTED);
      event.set_pid(p.pid);
      sink_(event);
      return;
    }
  }
  if (draining_.load()) {
    return ReportStartFailure(c.session_id(), "this worker is draining: it takes no new session");
  }
  auto user = identities_.Acquire(c.session_id());
  if (!user.ok()) return ReportStartFailure(c.session_id(), std::string(user.status().message()));
  if (!user->drop) {
    spdlog::warn("session {} runs as the worker's own user (--sessions-as-worker-user): it can read the worker's "
                 "keys and signal it; for development only",
                 c.session_id());
  }
  auto home = MakeHome(c.session_id(), *user);
  if (!home.ok()) {
    identities_.Release(c.session_id());
    return ReportStartFailure(c.session_id(), std::string(home.status().message()));
  }
  auto output = pump_.Open(c.session_id(), absl::StrCat(session_dir_, "/", c.session_id(), ".log"));
  if (!output.ok()) {
    identities_.Release(c.session_id());
    return ReportStartFailure(c.session_id(), std::string(output.status().message()));
  }
  const auto& res = c.spec().resources();
  auto cgroup = cgroups_.Prepare(c.session_id(), {res.cpu_millis(), res.memory_bytes()});
  if (!cgroup.ok()) {
    close(*output);
    identities_.Release(c.session_id());
    return ReportStartFailure(c.session_id(), std::string(cgroup.status().message()));
  }
  if (!cgroup->not_enforced.empty()) {
    pump_.Find(c.session_id())->AppendNote("gantry: " + cgroup->not_enforced + "\n");
    spdlog::warn("session {}: {}", c.session_id(), cgroup->not_enforced);
  }
  SpawnSpec spec;
  spec.session_id = c.session_id();
  spec.argv.assign(c.spec().command().begin(), c.spec().command().end());
  spec.env = BuildEnv(c, *home);
  spec.working_dir = c.spec().working_dir().empty() ? *home : c.spec().working_dir();
  spec.user = *user;
  spec.output_fd = *output;
  spec.cgroup_procs_fd = cgroup->procs_fd;
  spec.cgroup_dir_fd = cgroup->dir_fd;
  {
    std::lock_guard<std::mutex> lock(mu_);
    gpus_[c.session_id()].assign(c.gpu_uuids().begin(), c.gpu_uuids().end());
    absl::Duration idle = absl::Seconds(c.spec().idle_timeout().seconds()) +
                          absl::Nanoseconds(c.spec().idle_timeout().nanos());
    if (idle > absl::ZeroDuration()) {
      timeouts_[c.session_id()] = idle;
      idle_[c.session_id()] = {idle, absl::Now()};
    }
  }
  auto pid = supervisor_.Spawn(spec);
  // The session holds its own copies now; the log completes when the session's copies close.
  close(*output);
  if (cgroup->procs_fd >= 0) close(cgroup->procs_fd);
  if (cgroup->dir_fd >= 0) close(cgroup->dir_fd);
  if (!pid.ok()) {
    identities_.Release(c.session_id());
    return ReportStartFailure(c.session_id(), std::string(pid.status().message()));
  }
  event.set_kind(v1::WorkerSessionEvent::KIND_STARTED);
  event.set_pid(*pid);
  spdlog::info("session {} started as pid {} on GPUs [{}]", c.session_id(), *pid, absl::StrJoin(c.gpu_uuids(), ","));
  sink_(event);
}

void SessionRunner::Stop(const v1::StopSessionCommand& c) {
  absl::Duration grace = absl::Milliseconds(std::max<int64_t>(0, c.grace_period_ms()));
  absl::Status s = supervisor_.Stop(c.session_id(), grace);
  if (!s.ok()) {
    // Nothing running under that id: tell the controller it is gone.
    v1::WorkerSessionEvent event;
    event.set_session_id(c.session_id());
    event.set_kind(v1::WorkerSessionEvent::KIND_EXITED);
    event.set_stop_requested(true);
    event.set_message("no such process on this worker");
    ToProto(absl::Now(), event.mutable_time());
    sink_(event);
  }
}

void SessionRunner::Hibernate(const std::string& session_id) { Suspend(session_id, ""); }

void SessionRunner::WaitUntilStarted(const std::string& session_id) {
  std::unique_lock<std::mutex> lock(mu_);
  started_.wait(lock, [&] { return starting_.count(session_id) == 0; });
}

void SessionRunner::Suspend(const std::string& session_id, const std::string& why) {
  // The idle clock runs from the start's beginning: a start slower than the idle timeout must
  // finish (and be reported) before it is hibernated.
  WaitUntilStarted(session_id);
  std::lock_guard<std::mutex> report(report_mu_);
  v1::WorkerSessionEvent event;
  event.set_session_id(session_id);
  ToProto(absl::Now(), event.mutable_time());
  absl::Status s = supervisor_.Suspend(session_id);
  event.set_kind(s.ok() ? v1::WorkerSessionEvent::KIND_HIBERNATED : v1::WorkerSessionEvent::KIND_EXITED);
  event.set_message(s.ok() ? why : std::string(s.message()));
  if (s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    idle_.erase(session_id);  // Hibernated: no idle clock until it is woken.
  }
  if (s.ok() && !why.empty()) spdlog::info("session {} hibernated: {}", session_id, why);
  sink_(event);
}

void SessionRunner::Wake(const std::string& session_id) {
  WaitUntilStarted(session_id);
  std::lock_guard<std::mutex> report(report_mu_);
  v1::WorkerSessionEvent event;
  event.set_session_id(session_id);
  ToProto(absl::Now(), event.mutable_time());
  absl::Status s = supervisor_.Resume(session_id);
  event.set_kind(s.ok() ? v1::WorkerSessionEvent::KIND_WOKEN : v1::WorkerSessionEvent::KIND_EXITED);
  if (!s.ok()) event.set_message(std::string(s.message()));
  {
    // Woken: the idle clock starts again.
    std::lock_guard<std::mutex> lock(mu_);
    auto it = timeouts_.find(session_id);
    if (s.ok() && it != timeouts_.end()) idle_[session_id] = {it->second, absl::Now()};
  }
  sink_(event);
}

void SessionRunner::StopAll(absl::Duration grace) { supervisor_.StopAll(grace); }

void SessionRunner::OnExit(const ExitInfo& exit) {
  WaitUntilStarted(exit.session_id);  // A process that exits at once is reported STARTED first.
  std::lock_guard<std::mutex> report(report_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    gpus_.erase(exit.session_id);
    idle_.erase(exit.session_id);
    timeouts_.erase(exit.session_id);
  }
  cgroups_.Remove(exit.session_id);  // Whatever the session started outside its group dies too.
  // Its processes are gone: its home goes, as its own uid (the home's owner), then the uid may
  // serve another.
  const std::string home = absl::StrCat(session_dir_, "/", exit.session_id);
  struct stat st;
  if (lstat(home.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    SessionUser owner = SessionUser::Unchanged();
    if (st.st_uid != getuid()) {
      owner.drop = true;
      owner.uid = st.st_uid;
      owner.gid = st.st_gid;
    }
    cleaner_.Clean(exit.session_id, home, owner);
  } else {
    identities_.Release(exit.session_id);
  }
  spdlog::info("session {} (pid {}) ended: code {} signal {}{}", exit.session_id, exit.pid,
               exit.exit_code, exit.term_signal, exit.stop_requested ? " (stop requested)" : "");
  v1::WorkerSessionEvent event;
  event.set_session_id(exit.session_id);
  event.set_kind(v1::WorkerSessionEvent::KIND_EXITED);
  event.set_pid(exit.pid);
  event.set_exit_code(exit.exit_code);
  event.set_term_signal(exit.term_signal);
  event.set_stop_requested(exit.stop_requested);
  ToProto(absl::Now(), event.mutable_time());
  sink_(event);
}

std::vector<v1::RunningSession> SessionRunner::Running() const {
  std::vector<v1::RunningSession> out;
  auto processes = supervisor_.List();
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& p : processes) {
    v1::RunningSession r;
    r.set_session_id(p.session_id);
    r.set_pid(p.pid);
    r.set_phase(p.suspended ? v1::SESSION_PHASE_HIBERNATED : v1::SESSION_PHASE_RUNNING);
    auto g = gpus_.find(p.session_id);
    if (g != gpus_.end()) {
      for (const auto& uuid : g->second) r.add_gpu_uuids(uuid);
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::map<std::string, pid_t> SessionRunner::Groups() const {
  std::map<std::string, pid_t> out;
  for (const auto& p : supervisor_.List()) out[p.session_id] = p.pid;
  return out;
}

int SessionRunner::active() const { return static_cast<int>(supervisor_.List().size()); }

}  // namespace gantry::worker
