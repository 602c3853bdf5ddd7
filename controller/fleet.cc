#include "controller/fleet.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/identity.h"
#include "common/metrics.h"
#include "common/request_ids.h"
#include "common/proto_time.h"
#include "common/session_phase.h"
#include "common/status.h"

namespace gantry::controller {
namespace {

constexpr int kMaxGpusPerWorker = 64;

absl::Status ValidateHardware(const v1::RegisterWorkerRequest& r) {
  if (!IsValidName(r.name())) return absl::InvalidArgumentError("name: not a valid worker name");
  const auto& hw = r.hardware();
  if (hw.cpu_cores() < 0 || hw.cpu_cores() > 4096) {
    return absl::InvalidArgumentError("hardware.cpu_cores: must be 0..4096");
  }
  if (hw.memory_bytes() < 0) return absl::InvalidArgumentError("hardware.memory_bytes: negative");
  if (hw.gpus_size() > kMaxGpusPerWorker) {
    return absl::InvalidArgumentError(absl::StrCat("hardware.gpus: ", hw.gpus_size(),
                                                   " GPUs; at most ", kMaxGpusPerWorker));
  }
  std::set<std::string> uuids;
  for (int i = 0; i < hw.gpus_size(); ++i) {
    const auto& g = hw.gpus(i);
    if (g.uuid().empty() || g.uuid().size() > 128 || !uuids.insert(g.uuid()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("hardware.gpus[", i, "].uuid: missing, too long or duplicated"));
    }
    if (g.memory_total_bytes() < 0 || g.memory_free_bytes() < 0 ||
        g.memory_free_bytes() > g.memory_total_bytes()) {
      return absl::InvalidArgumentError(
          absl::StrCat("hardware.gpus[", i, "]: memory figures are impossible"));
    }
  }
  if (r.skills_size() > 1024) return absl::InvalidArgumentError("skills: at most 1024");
  return absl::OkStatus();
}

// A start's wait for the fleet's lock (heartbeats, events and other starts hold it), and that
// wait with the decision under it (Place times the decision alone), recorded when it goes out
// of scope: after the lock is released, so the metrics registry's own lock is never taken
// while the fleet's is held.
class PlacementClock {
 public:
  PlacementClock() : asked_ns_(absl::GetCurrentTimeNanos()) {}
  ~PlacementClock() {
    if (locked_ns_ != 0) {
      Metrics::Global().Observe("gantry_placement_lock_wait_seconds",
                                "Time a start waits for the controller's fleet lock before its placement decision",
                                {}, static_cast<double>(locked_ns_ - asked_ns_) * 1e-9, /*fine=*/true);
    }
    if (chosen_ns_ != 0) {
      Metrics::Global().Observe("gantry_placement_choice_seconds",
                                "Time from a start reaching the controller to its worker and GPUs chosen (the wait "
                                "for the fleet lock and the decision)",
                                {}, static_cast<double>(chosen_ns_ - asked_ns_) * 1e-9, /*fine=*/true);
    }
  }
  PlacementClock(const PlacementClock&) = delete;
  PlacementClock& operator=(const PlacementClock&) = delete;
  void Locked() { locked_ns_ = absl::GetCurrentTimeNanos(); }
  void Chosen() { chosen_ns_ = absl::GetCurrentTimeNanos(); }

 private:
  const int64_t asked_ns_;
  int64_t locked_ns_ = 0;
  int64_t chosen_ns_ = 0;
};

v1::ControllerMessage DrainMessage(bool draining) {
  v1::ControllerMessage drain;
  drain.mutable_drain()->set_resume(!draining);
  return drain;
}

}  // namespace

Fleet::Fleet(std::string node_id, absl::Duration heartbeat_interval, int missed_beats,
             EventSink sink, absl::Duration reconnect_grace, std::unique_ptr<PlacementPolicy> policy)
    : node_id_(std::move(node_id)),
      heartbeat_interval_(heartbeat_interval),
      missed_beats_(missed_beats),
      sink_(std::move(sink)),
      reconnect_grace_(reconnect_grace),
      policy_(policy != nullptr ? std::move(policy) : std::make_unique<BalancedPlacement>()) {}

absl::StatusOr<std::string> Fleet::RegisterWorker(const v1::RegisterWorkerRequest& r) {
  absl::Status valid = ValidateHardware(r);
  if (!valid.ok()) return valid;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, w] : workers_) {
    if (name == r.name()) continue;
    for (const auto& g : w.gpus) {
      for (const auto& mine : r.hardware().gpus()) {
        if (g.uuid() == mine.uuid()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "hardware.gpus: GPU ", mine.uuid(), " is already announced by worker ", name));
        }
      }
    }
  }
  auto it = workers_.find(r.name());
  if (it != workers_.end() && it->second.channel != nullptr) {
    return absl::AlreadyExistsError(
        absl::StrCat("worker ", r.name(), " is already connected; one process per worker name"));
  }
  WorkerState& w = workers_[r.name()];
  if (w.id.empty()) w.id = absl::StrCat(node_id_, "/", r.name());
  w.name = r.name();
  w.node_id = r.node_id().empty() ? node_id_ : r.node_id();
  w.gpus.assign(r.hardware().gpus().begin(), r.hardware().gpus().end());
  w.skills.assign(r.skills().begin(), r.skills().end());
  w.capabilities.assign(r.capabilities().begin(), r.capabilities().end());
  w.pulse = std::make_shared<WorkerPulse>(w.gpus, w.skills, absl::Now(), heartbeat_interval_ * missed_beats_);
  {
    std::unique_lock<std::shared_mutex> pulses(pulses_mu_);
    pulses_[r.name()] = w.pulse;
  }
  spdlog::info("worker {} registered: {} GPU(s), {} skill(s), {} capabilit(ies)", r.name(), w.gpus.size(),
               w.skills.size(), w.capabilities.size());
  return w.id;
}

absl::Status Fleet::Attach(const std::string& worker_name, const v1::WorkerHello& hello,
                           std::shared_ptr<WorkerChannel> channel) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = workers_.find(worker_name);
    if (it == workers_.end()) {
      return absl::FailedPreconditionError("call RegisterWorker before Connect");
    }
    WorkerState& w = it->second;
    if (w.channel != nullptr) {
      return absl::AlreadyExistsError(absl::StrCat("worker ", worker_name, " is already connected"));
    }
    if (hello.worker_id() != w.id) {
      return absl::InvalidArgumentError("hello.worker_id: does not match RegisterWorker's answer");
    }
    w.channel = std::move(channel);
    if (draining_.load()) w.channel->Send(DrainMessage(true));
    inventory_stale_ = true;
    ++generation_;
    w.pulse->Restart(absl::Now());
    w.silent = false;
    w.offline_since = absl::Time();
    // Sessions kept through the grace period that the worker no longer runs ended meanwhile.
    std::set<std::string> reported;
    for (const auto& r : hello.sessions()) reported.insert(r.session_id());
    std::set<std::string> kept = w.sessions;
    for (const auto& id : kept) {
      if (reported.count(id) == 0) {
        FailSession(id, absl::StrCat("worker ", worker_name, " came back without it"));
      }
    }
    // Re-adopt what the worker still runs (after a controller restart or a reconnect).
    for (const auto& running : hello.sessions()) {
      auto known = sessions_.find(running.session_id());
      if (known != sessions_.end() && known->second.worker_name == worker_name &&
          !IsTerminal(known->second.phase)) {
        continue;  // Kept through the grace period: it simply carries on.
      }
      auto& s = sessions_[running.session_id()];
      if (!s.worker_name.empty() && s.worker_name != worker_name) continue;
      s.worker_name = worker_name;
      s.phase = running.phase() == v1::SESSION_PHASE_HIBERNATED ? v1::SESSION_PHASE_HIBERNATED
                                                                : v1::SESSION_PHASE_RUNNING;
      s.pid = running.pid();
      s.message = absl::StrCat("re-adopted from worker ", worker_name);
      s.gpu_uuids.assign(running.gpu_uuids().begin(), running.gpu_uuids().end());
      if (!gpus_.Assign(running.session_id(), s.gpu_uuids)) {
        spdlog::error("worker {} re-reports session {} on GPU(s) [{}] another session holds; they stay with it",
                      worker_name, running.session_id(), absl::StrJoin(s.gpu_uuids, ", "));
      }
      w.sessions.insert(running.session_id());
      Report(running.session_id(), s);
    }
    Reindex(w);
    spdlog::info("worker {} connected with {} running session(s)", worker_name, hello.sessions_size());
  }
  return absl::OkStatus();
}

void Fleet::Report(const std::string& session_id, const SessionState& s) {
  // Under mu_, so the stream numbers a session's changes in the order they happened here.
  sink_(MakeEvent(session_id, s));
}

void Fleet::FailSession(const std::string& session_id, const std::string& message) {
  auto s = sessions_.find(session_id);
  if (s == sessions_.end()) return;
  s->second.phase = v1::SESSION_PHASE_FAILED;
  s->second.message = message;
  Release(session_id);
  Report(session_id, s->second);
  sessions_.erase(s);
}

size_t Fleet::FailSessionsOf(WorkerState& worker, const std::string& why) {
  std::set<std::string> lost = worker.sessions;
  for (const auto& id : lost) FailSession(id, absl::StrCat("worker ", worker.name, " lost: ", why));
  worker.sessions.clear();
  Reindex(worker);
  return lost.size();
}

void Fleet::Detach(const std::string& worker_name, const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = workers_.find(worker_name);
    if (it == workers_.end()) return;
    WorkerState& w = it->second;
    w.channel = nullptr;
    Reindex(w);
    inventory_stale_ = true;
    ++generation_;
    // Silent is what the heartbeats say, whether or not ExpireSilentWorkers has looked yet: a
    // controller that was stalled itself (a loaded node, a debugger, swap) past the worker's
    // keepalive finds, when it runs again, the stream ended by the worker and its heartbeats
    // overdue (or only the backlog the worker sent meanwhile, read in one burst: WentSilent),
    // and must not take the worker's live processes for dead. A worker that died
    // heartbeated until its end, so its stream breaks before the deadline: FAILED at once.
    const bool silent = w.silent || w.pulse->WentSilent(absl::Now());
    if (silent && !w.sessions.empty()) {
      // Silent, not gone: its processes may well be running. Keep them (and their GPUs) for the
      // grace period; ExpireSilentWorkers fails them if it does not come back.
      w.offline_since = absl::Now();
      spdlog::warn("worker {} offline ({}); its {} session(s) wait {} for it to return", worker_name,
                   reason, w.sessions.size(), absl::FormatDuration(reconnect_grace_));
    } else {
      const size_t n = FailSessionsOf(w, reason);
      spdlog::warn("worker {} offline ({}); {} session(s) failed", worker_name, reason, n);
    }
  }
  changed_.notify_all();
}

void Fleet::Heartbeat(const std::string& worker_name, const v1::WorkerHeartbeat& beat) {
  std::shared_ptr<WorkerPulse> pulse;
  {
    std::shared_lock<std::shared_mutex> pulses(pulses_mu_);
    auto it = pulses_.find(worker_name);
    if (it == pulses_.end()) return;
    pulse = it->second;
  }
  std::optional<std::vector<std::string>> skills = pulse->Beat(beat, absl::Now());
  if (!skills.has_value()) return;
  // New skills change what placement and the API server see: the fleet's lock, rarely.
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(worker_name);
  if (it == workers_.end() || it->second.pulse != pulse) return;  // Registered again meanwhile.
  it->second.skills = *std::move(skills);
  inventory_stale_ = true;
  ++generation_;
}

void Fleet::SetDraining(bool draining, absl::Time as_of) {
  // Under mu_, as Attach sends it, so a worker connecting meanwhile gets the last word. Send
  // only queues (WorkerStreamChannel): nothing waits on a worker here.
  std::lock_guard<std::mutex> lock(mu_);
  if (as_of < draining_as_of_) return;
  draining_as_of_ = as_of;
  if (draining_.exchange(draining) == draining) return;
  spdlog::info(draining ? "cordoned by the API server: workers take no new sessions or invokes"
                        : "uncordoned by the API server: workers take new work again");
  for (auto& [name, w] : workers_) {
    if (w.channel != nullptr) w.channel->Send(DrainMessage(draining));
  }
}

void Fleet::ExpireSilentWorkers() {
  std::vector<std::shared_ptr<WorkerChannel>> silent;
  size_t failed = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    absl::Time now = absl::Now();
    for (auto& [name, w] : workers_) {
      if (w.channel != nullptr && !w.silent && w.pulse->deadline() < now) {
        spdlog::warn("worker {} missed {} heartbeats; closing its stream", name, missed_beats_);
        w.silent = true;
        silent.push_back(w.channel);
      }
      if (w.channel == nullptr && !w.sessions.empty() && w.offline_since != absl::Time() &&
          now - w.offline_since > reconnect_grace_) {
        failed += FailSessionsOf(w, absl::StrCat("did not come back within ", absl::FormatDuration(reconnect_grace_)));
        w.offline_since = absl::Time();
      }
    }
  }
  // Closing ends the worker's Connect handler, which detaches it.
  for (auto& c : silent) c->Close();
  if (failed > 0) changed_.notify_all();
}

absl::Status Fleet::OnWorkerEvent(const std::string& worker_name,
                                  const v1::WorkerSessionEvent& event) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sessions_.find(event.session_id());
    if (it == sessions_.end() || it->second.worker_name != worker_name) {
      if (event.kind() == v1::WorkerSessionEvent::KIND_EXITED) return absl::OkStatus();  // Already gone.
      return absl::InvalidArgumentError(
          absl::StrCat("session_event.session_id: ", event.session_id().substr(0, 64),
                       " is not placed on worker ", worker_name));
    }
    SessionState& s = it->second;
    switch (event.kind()) {
      case v1::WorkerSessionEvent::KIND_STARTED:
        s.phase = v1::SESSION_PHASE_RUNNING;
        s.pid = event.pid();
        s.message = absl::StrCat("process ", event.pid(), " started on worker ", worker_name);
        break;
      case v1::WorkerSessionEvent::KIND_START_FAILED:
        s.phase = v1::SESSION_PHASE_FAILED;
        s.message = absl::StrCat("could not start: ", event.message());
        Release(event.session_id());
        break;
      case v1::WorkerSessionEvent::KIND_EXITED: {
        bool clean = event.stop_requested() || (event.term_signal() == 0 && event.exit_code() == 0);
        s.phase = clean ? v1::SESSION_PHASE_TERMINATED : v1::SESSION_PHASE_FAILED;
        s.message = event.term_signal() != 0
                        ? absl::StrCat("process killed by signal ", event.term_signal())
                        : absl::StrCat("process exited with code ", event.exit_code());
        if (event.stop_requested()) absl::StrAppend(&s.message, " after a stop request");
        Release(event.session_id());
        break;
      }
      case v1::WorkerSessionEvent::KIND_HIBERNATED:
        s.phase = v1::SESSION_PHASE_HIBERNATED;
        s.message = event.message().empty() ? "process group stopped (SIGSTOP); GPUs stay reserved"
                                            : absl::StrCat(event.message(), "; hibernated (SIGSTOP), GPUs stay reserved");
        break;
      case v1::WorkerSessionEvent::KIND_WOKEN:
        s.phase = v1::SESSION_PHASE_RUNNING;
        s.message = "process group continued (SIGCONT)";
        break;
      default:
        return absl::InvalidArgumentError("session_event.kind: unspecified");
    }
    // Every change goes to the API server on the one event route, in the order it happened here;
    // a call waiting for it (StopSession, SetHibernated) only looks, and never reports it.
    Report(event.session_id(), s);
    if (IsTerminal(s.phase)) sessions_.erase(it);
  }
  changed_.notify_all();
  return absl::OkStatus();
}

absl::StatusOr<Placement> Fleet::Place(const std::string& session_id, const v1::SessionSpec& spec) {
  ScopedLatency deciding("gantry_placement_decision_seconds",
                         "Time the balancer takes to choose a worker and GPUs, by outcome", {{"outcome", "refused"}},
                         /*fine=*/true);
  // The walk remembers the workers it showed, so the choice (a position in it) names one. The
  // order cannot change under the lock: a policy that walks again sees the same positions.
  class LoadOrderWalk : public CandidateWalk {
   public:
    explicit LoadOrderWalk(const WorkerLoadOrder<WorkerState>& order) : order_(order) {}
    bool empty() const override { return order_.size() == 0; }
    void Walk(absl::FunctionRef<bool(size_t, const WorkerCandidate&)> visit) const override {
      size_t position = 0;
      order_.ForEach([&](WorkerState* w, size_t load) {
        if (position == shown.size()) shown.push_back(w);
        return visit(position++, WorkerCandidate{&w->name, &w->gpus, &w->skills, load});
      });
    }
    mutable std::vector<WorkerState*> shown;

   private:
    const WorkerLoadOrder<WorkerState>& order_;
  };
  LoadOrderWalk online(load_order_);
  ASSIGN_OR_RETURN(PlacementChoice choice, policy_->Choose(online, gpus_, spec, node_id_));
  if (choice.worker >= online.shown.size() ||
      static_cast<int>(choice.gpus.size()) != spec.resources().gpus().count()) {
    return absl::InternalError("the placement policy chose no worker it was shown or the wrong number of GPUs");
  }
  WorkerState& chosen = *online.shown[choice.worker];
  for (const auto& g : choice.gpus) {
    const bool its_own = std::any_of(chosen.gpus.begin(), chosen.gpus.end(),
                                     [&](const v1::GpuInfo& mine) { return mine.uuid() == g; });
    if (!its_own) return absl::InternalError(absl::StrCat("the placement policy chose GPU ", g, " off its worker"));
  }
  // The ledger has the last word: a GPU is never given twice, whatever a policy chose.
  if (!gpus_.Assign(session_id, choice.gpus)) {
    return absl::InternalError(absl::StrCat("the placement policy chose a GPU another session holds: [",
                                            absl::StrJoin(choice.gpus, ", "), "]"));
  }
  chosen.sessions.insert(session_id);
  Reindex(chosen, /*chosen=*/true);
  ++generation_;
  deciding.labels()[0].second = "placed";
  return Placement{chosen.name, chosen.id, chosen.node_id, std::move(choice.gpus)};
}

void Fleet::Release(const std::string& session_id) {
  auto s = sessions_.find(session_id);
  if (s == sessions_.end()) return;
  gpus_.Release(session_id, s->second.gpu_uuids);
  auto w = workers_.find(s->second.worker_name);
  if (w != workers_.end()) {
    w->second.sessions.erase(session_id);
    Reindex(w->second);
  }
  ++generation_;
}

void Fleet::Reindex(WorkerState& worker, bool chosen) {
  worker.free_gpus = 0;
  worker.max_free_memory = 0;
  for (const auto& g : worker.gpus) {
    if (!gpus_.IsFree(g.uuid())) continue;
    ++worker.free_gpus;
    worker.max_free_memory = std::max(worker.max_free_memory, g.memory_total_bytes());
  }
  if (worker.channel == nullptr) {
    load_order_.Remove(&worker);
  } else {
    load_order_.Update(&worker, &worker.name, worker.sessions.size(), chosen);
  }
}

v1::SessionEvent Fleet::MakeEvent(const std::string& session_id, const SessionState& s) const {
  v1::SessionEvent e;
  e.set_session_id(session_id);
  e.set_phase(s.phase);
  e.set_message(s.message);
  auto w = workers_.find(s.worker_name);
  if (w != workers_.end()) {
    e.set_worker_id(w->second.id);
    e.set_node_id(w->second.node_id);
  }
  for (const auto& g : s.gpu_uuids) e.add_gpu_uuids(g);
  ToProto(absl::Now(), e.mutable_time());
  return e;
}

v1::ControllerSessionResponse Fleet::MakeResponse(const std::string& session_id,
                                                  const SessionState& s) {
  v1::ControllerSessionResponse r;
  r.set_session_id(session_id);
  r.set_phase(s.phase);
  r.set_message(s.message);
  auto w = workers_.find(s.worker_name);
  if (w != workers_.end()) {
    r.set_worker_id(w->second.id);
    r.set_node_id(w->second.node_id);
  }
  for (const auto& g : s.gpu_uuids) r.add_gpu_uuids(g);
  return r;
}

absl::StatusOr<v1::ControllerSessionResponse> Fleet::StartSession(const std::string& session_id,
                                                                  const v1::SessionSpec& spec) {
  std::shared_ptr<WorkerChannel> channel;
  v1::ControllerMessage command;
  v1::ControllerSessionResponse response;
  // Declared before the lock: it records once the lock is released, whichever way this returns.
  PlacementClock clock;
  {
    std::lock_guard<std::mutex> lock(mu_);
    clock.Locked();
    if (auto known = sessions_.find(session_id); known != sessions_.end()) {
      // Asked again (an API server resuming a placement whose first caller may be gone, or whose
      // report was lost): never started twice. Its state is reported again on the event route,
      // so the API server learns it whatever became of the first report.
      if (known->second.phase != v1::SESSION_PHASE_STARTING) Report(session_id, known->second);
      return MakeResponse(session_id, known->second);
    }
    if (draining_.load()) {
      // A create that chose this controller just before its cordon: the next candidate takes it.
      return absl::UnavailableError("this controller is cordoned (draining): it takes no new session");
    }
    auto placement = Place(session_id, spec);
    clock.Chosen();
    if (!placement.ok()) {
      spdlog::info("refused session {}: {}", session_id, placement.status().ToString());
      return placement.status();
    }
    NoteWorker(placement->worker_id);
    spdlog::info("session {} placed on worker {} with GPU(s) [{}]", session_id, placement->worker_name,
                 absl::StrJoin(placement->gpu_uuids, ", "));
    SessionState& s = sessions_[session_id];
    s.worker_name = placement->worker_name;
    s.gpu_uuids = placement->gpu_uuids;
    s.phase = v1::SESSION_PHASE_STARTING;
    s.message = absl::StrCat("starting on worker ", placement->worker_name);
    channel = workers_[placement->worker_name].channel;
    auto* start = command.mutable_start_session();
    start->set_session_id(session_id);
    *start->mutable_spec() = spec;
    for (const auto& g : placement->gpu_uuids) start->add_gpu_uuids(g);
    response = MakeResponse(session_id, s);
  }
  if (!channel->Send(command)) {
    std::lock_guard<std::mutex> lock(mu_);
    Release(session_id);
    sessions_.erase(session_id);
    return absl::UnavailableError("the chosen worker disconnected; retry");
  }
  // Taken: the worker's answer (RUNNING, or FAILED with why) travels the event route.
  return response;
}

absl::StatusOr<v1::ControllerSessionResponse> Fleet::StopSession(const std::string& session_id,
                                                                 absl::Duration grace,
                                                                 absl::Duration wait) {
  std::shared_ptr<WorkerChannel> channel;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sessions_.find(session_id);
    if (it == sessions_.end()) {
      return absl::NotFoundError(absl::StrCat("session ", session_id, " is not on this controller"));
    }
    it->second.phase = v1::SESSION_PHASE_TERMINATING;
    auto w = workers_.find(it->second.worker_name);
    if (w != workers_.end()) channel = w->second.channel;
  }
  v1::ControllerMessage command;
  command.mutable_stop_session()->set_session_id(session_id);
  command.mutable_stop_session()->set_grace_period_ms(absl::ToInt64Milliseconds(grace));
  bool sent = channel != nullptr && channel->Send(command);
  std::unique_lock<std::mutex> lock(mu_);
  // Its end is reported (and the session forgotten here) by OnWorkerEvent.
  if (sent) {
    changed_.wait_for(lock, absl::ToChronoMilliseconds(grace + wait),
                      [&] { return sessions_.count(session_id) == 0; });
  }
  if (sessions_.count(session_id) > 0) {
    return absl::UnavailableError(absl::StrCat("session ", session_id,
                                               sent ? " did not exit in time" : "'s worker is offline"));
  }
  v1::ControllerSessionResponse response;
  response.set_session_id(session_id);
  response.set_phase(v1::SESSION_PHASE_TERMINATED);
  response.set_message("process exited after a stop request");
  return response;
}

absl::StatusOr<v1::ControllerSessionResponse> Fleet::SetHibernated(const std::string& session_id,
                                                                   bool hibernate,
                                                                   absl::Duration wait) {
  const v1::SessionPhase from = hibernate ? v1::SESSION_PHASE_RUNNING : v1::SESSION_PHASE_HIBERNATED;
  const v1::SessionPhase to = hibernate ? v1::SESSION_PHASE_HIBERNATED : v1::SESSION_PHASE_RUNNING;
  std::shared_ptr<WorkerChannel> channel;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sessions_.find(session_id);
    if (it == sessions_.end()) {
      return absl::NotFoundError(absl::StrCat("session ", session_id, " is not on this controller"));
    }
    if (it->second.phase == to) return MakeResponse(session_id, it->second);  // Already there.
    if (it->second.phase != from) {
      return absl::FailedPreconditionError(absl::StrCat("session ", session_id, " is ",
                                                        PhaseName(it->second.phase), ", not ",
                                                        PhaseName(from)));
    }
    auto w = workers_.find(it->second.worker_name);
    if (w == workers_.end() || w->second.channel == nullptr) {
      return absl::UnavailableError(absl::StrCat("session ", session_id, "'s worker is offline"));
    }
    channel = w->second.channel;
  }
  v1::ControllerMessage command;
  if (hibernate) {
    command.mutable_hibernate_session()->set_session_id(session_id);
  } else {
    command.mutable_wake_session()->set_session_id(session_id);
  }
  bool sent = channel->Send(command);
  std::unique_lock<std::mutex> lock(mu_);
  // The change itself is reported on the event route by OnWorkerEvent; this answer only says
  // whether the worker confirmed it in time.
  if (sent) {
    changed_.wait_for(lock, absl::ToChronoMilliseconds(wait), [&] {
      auto it = sessions_.find(session_id);
      return it == sessions_.end() || it->second.phase != from;
    });
  }
  auto it = sessions_.find(session_id);
  if (it == sessions_.end()) {
    return absl::FailedPreconditionError(absl::StrCat("session ", session_id, " ended meanwhile"));
  }
  if (it->second.phase != to) {
    return absl::UnavailableError(absl::StrCat("worker did not confirm ",
                                               hibernate ? "hibernation" : "wake-up", " in time"));
  }
  return MakeResponse(session_id, it->second);
}

absl::StatusOr<std::pair<std::string, std::shared_ptr<WorkerChannel>>> Fleet::LogSource(
    const std::string& session_id, const std::string& worker_id) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string worker_name;
  if (auto s = sessions_.find(session_id); s != sessions_.end()) {
    worker_name = s->second.worker_name;
  } else {
    for (const auto& [name, w] : workers_) {
      if (w.id == worker_id) worker_name = name;
    }
  }
  auto w = workers_.find(worker_name);
  if (worker_name.empty() || w == workers_.end()) {
    return absl::NotFoundError(absl::StrCat("no worker on this node holds session ", session_id));
  }
  if (w->second.channel == nullptr) {
    return absl::UnavailableError(absl::StrCat("worker ", worker_name, " is offline; its logs are unreachable"));
  }
  return std::make_pair(worker_name, w->second.channel);
}

void Fleet::RequestStop(const std::string& session_id, absl::Duration grace) {
  std::shared_ptr<WorkerChannel> channel;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sessions_.find(session_id);
    if (it == sessions_.end()) return;
    auto w = workers_.find(it->second.worker_name);
    if (w != workers_.end()) channel = w->second.channel;
  }
  if (channel == nullptr) return;
  v1::ControllerMessage command;
  command.mutable_stop_session()->set_session_id(session_id);
  command.mutable_stop_session()->set_grace_period_ms(absl::ToInt64Milliseconds(grace));
  channel->Send(command);
}

absl::StatusOr<v1::SessionStatusResponse> Fleet::SessionStatus(const std::string& session_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sessions_.find(session_id);
  if (it == sessions_.end()) {
    return absl::NotFoundError(absl::StrCat("session ", session_id, " is not on this controller"));
  }
  v1::SessionStatusResponse r;
  r.set_session_id(session_id);
  r.set_phase(it->second.phase);
  r.set_pid(it->second.pid);
  auto w = workers_.find(it->second.worker_name);
  if (w != workers_.end()) {
    r.set_worker_id(w->second.id);
    r.set_node_id(w->second.node_id);
  }
  for (const auto& g : it->second.gpu_uuids) r.add_gpu_uuids(g);
  return r;
}

void Fleet::OnMetrics(const std::string& worker_name, const v1::WorkerMetrics& metrics) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sessions_.find(metrics.session_id());
  if (it == sessions_.end() || it->second.worker_name != worker_name) return;
  it->second.usage = metrics.usage();
  it->second.sampled_at = absl::Now();
}

absl::StatusOr<v1::SessionMetricsResponse> Fleet::Metrics(const std::string& session_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sessions_.find(session_id);
  if (it == sessions_.end()) {
    return absl::NotFoundError(absl::StrCat("session ", session_id, " is not running on this controller"));
  }
  v1::SessionMetricsResponse r;
  r.set_session_id(session_id);
  *r.mutable_current_usage() = it->second.usage;
  (*r.mutable_custom_metrics())["sampled_at"] =
      it->second.sampled_at == absl::Time() ? "never" : absl::FormatTime(absl::RFC3339_sec, it->second.sampled_at, absl::UTCTimeZone());
  auto w = workers_.find(it->second.worker_name);
  if (w != workers_.end()) {
    std::vector<v1::GpuInfo> gpus = w->second.gpus;
    w->second.pulse->CopyLiveFigures(gpus);
    for (auto& g : gpus) {
      if (std::find(it->second.gpu_uuids.begin(), it->second.gpu_uuids.end(), g.uuid()) ==
          it->second.gpu_uuids.end()) {
        continue;
      }
      g.set_session_id(session_id);
      *r.add_gpus() = std::move(g);
    }
  }
  return r;
}

std::vector<InvokeTarget> Fleet::WorkersWithCapability(
    const std::string& capability, const std::function<bool(const std::string& version)>& matches) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<InvokeTarget> out;
  for (const auto& [name, w] : workers_) {
    if (w.channel == nullptr) continue;
    for (const auto& c : w.capabilities) {
      if (c.name() == capability && matches(c.version())) {
        out.push_back({name, w.id, w.channel});
        break;
      }
    }
  }
  return out;
}

FleetSnapshot Fleet::Snapshot() {
  std::lock_guard<std::mutex> lock(mu_);
  FleetSnapshot snap;
  int live = 0;
  for (const auto& [id, s] : sessions_) {
    if (IsTerminal(s.phase)) continue;
    ++live;
    snap.session_ids.push_back(id);
  }
  for (const auto& [name, w] : workers_) {
    if (w.channel == nullptr) continue;
    snap.capacity.set_workers_online(snap.capacity.workers_online() + 1);
    const int free = w.free_gpus;
    snap.capacity.set_max_gpu_memory_bytes(std::max(snap.capacity.max_gpu_memory_bytes(), w.max_free_memory));
    snap.capacity.set_gpus_total(snap.capacity.gpus_total() + static_cast<int>(w.gpus.size()));
    snap.capacity.set_gpus_free(snap.capacity.gpus_free() + free);
    snap.capacity.set_max_free_gpus_per_worker(std::max(snap.capacity.max_free_gpus_per_worker(), free));
    snap.load.set_active_invokes(snap.load.active_invokes() + w.pulse->active_invokes());
    if (!w.gpus.empty()) AddWorkerRoom(w, &snap.capacity);
  }
  if (inventory_stale_) RebuildInventory();
  for (const auto& m : inventory_.gpu_models) snap.capacity.add_gpu_models(m);
  snap.skills = inventory_.skills;
  snap.capabilities = inventory_.capabilities;
  snap.load.set_active_sessions(live);
  return snap;
}

void Fleet::AddWorkerRoom(const WorkerState& w, v1::ControllerCapacity* capacity) {
  v1::WorkerRoom* room = capacity->add_workers();
  room->set_worker_id(w.id);
  room->set_gpus_total(static_cast<int32_t>(w.gpus.size()));
  room->set_gpus_free(w.free_gpus);
  std::set<std::string> models;
  for (const auto& g : w.gpus) {
    models.insert(g.name());
    room->set_max_gpu_memory_bytes(std::max(room->max_gpu_memory_bytes(), g.memory_total_bytes()));
  }
  for (const auto& m : models) room->add_gpu_models(m);
}

void Fleet::RebuildInventory() {
  std::set<std::string> models, skills;
  std::set<std::pair<std::string, std::string>> capabilities;
  for (const auto& [name, w] : workers_) {
    if (w.channel == nullptr) continue;
    for (const auto& g : w.gpus) models.insert(g.name());
    skills.insert(w.skills.begin(), w.skills.end());
    for (const auto& c : w.capabilities) capabilities.emplace(c.name(), c.version());
  }
  inventory_.gpu_models.assign(models.begin(), models.end());
  inventory_.skills.assign(skills.begin(), skills.end());
  inventory_.capabilities.clear();
  for (const auto& [name, version] : capabilities) {
    v1::CapabilityInfo info;
    info.set_name(name);
    info.set_version(version);
    inventory_.capabilities.push_back(std::move(info));
  }
  inventory_stale_ = false;
}

std::vector<v1::Worker> Fleet::Workers() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<v1::Worker> out;
  for (const auto& [name, w] : workers_) {
    v1::Worker worker;
    worker.set_id(w.id);
    worker.set_name(name);
    worker.set_node_id(w.node_id);
    worker.set_status(w.channel != nullptr ? v1::WORKER_STATUS_ONLINE : v1::WORKER_STATUS_OFFLINE);
    std::vector<v1::GpuInfo> gpus = w.gpus;
    w.pulse->CopyLiveFigures(gpus);
    for (auto& g : gpus) {
      if (auto holder = gpus_.Holder(g.uuid())) g.set_session_id(*holder);
      *worker.add_gpus() = std::move(g);
    }
    for (const auto& s : w.skills) worker.add_skills(s);
    for (const auto& c : w.capabilities) *worker.add_capabilities() = c;
    worker.set_active_sessions(static_cast<int32_t>(w.sessions.size()));
    ToProto(w.pulse->last_beat(), worker.mutable_last_heartbeat());
    out.push_back(std::move(worker));
  }
  return out;
}

}  // namespace gantry::controller
