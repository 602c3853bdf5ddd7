// The controller's picture of its node: which workers are connected, their GPUs, and which
// session runs where. Placement happens here, under one mutex: a PlacementPolicy (the
// production balancer by default) chooses, and the GpuLedger makes sure a GPU is never handed
// to two sessions and is released on every exit path.
//
// Thread-safe. Callers are the WorkerService stream handlers (one per worker), the
// ControllerService handlers and the liveness monitor.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "controller/balanced_placement.h"
#include "controller/gpu_ledger.h"
#include "controller/placement_policy.h"
#include "controller/worker_load_order.h"
#include "controller/worker_pulse.h"
#include "gantry/v1/admin_service.pb.h"
#include "gantry/v1/controller_service.pb.h"
#include "gantry/v1/registry_service.pb.h"
#include "gantry/v1/worker_service.pb.h"

namespace gantry::controller {

// Where the controller's commands to one worker go: its Connect stream.
class WorkerChannel {
 public:
  virtual ~WorkerChannel() = default;
  // False once the stream is closed.
  virtual bool Send(const v1::ControllerMessage& message) = 0;
  // Ends the stream (e.g. missed heartbeats).
  virtual void Close() = 0;
};

struct Placement {
  std::string worker_name;
  std::string worker_id;
  std::string node_id;
  std::vector<std::string> gpu_uuids;
};

struct FleetSnapshot {
  v1::ControllerCapacity capacity;
  v1::ControllerLoad load;
  std::vector<std::string> skills;
  std::vector<v1::CapabilityInfo> capabilities;  // Of online workers, each name/version once.
  std::vector<std::string> session_ids;  // Every session here that has not ended.
};

// An online worker serving a capability, for InvokeRouter.
struct InvokeTarget {
  std::string worker_name;
  std::string worker_id;
  std::shared_ptr<WorkerChannel> channel;
};

class Fleet {
 public:
  // Called with every session phase change, once, in the order they happened (under the Fleet's
  // lock: it must only queue, never call back into the Fleet). The one route by which the API
  // server learns them: answers to ControllerService calls are never stored there.
  using EventSink = std::function<void(const v1::SessionEvent&)>;

  // `reconnect_grace`: how long a worker that went silent (missed heartbeats) keeps its sessions
  // while it is offline, waiting for it to come back and re-report them. `policy`: how a worker
  // and GPUs are chosen (default: BalancedPlacement).
  Fleet(std::string node_id, absl::Duration heartbeat_interval, int missed_beats, EventSink sink,
        absl::Duration reconnect_grace = absl::Seconds(60), std::unique_ptr<PlacementPolicy> policy = nullptr);

  // RegisterWorker: records the worker's hardware. ALREADY_EXISTS while a worker of that name
  // is connected; INVALID_ARGUMENT for impossible hardware.
  absl::StatusOr<std::string> RegisterWorker(const v1::RegisterWorkerRequest& request);

  // A Connect stream opened with `hello`. Re-adopts the sessions the worker reports.
  absl::Status Attach(const std::string& worker_name, const v1::WorkerHello& hello,
                      std::shared_ptr<WorkerChannel> channel);
  // The stream ended; the worker is offline. If the stream broke while the worker's heartbeats
  // were on time (the worker process is gone, and its keepers took its sessions with it) the
  // sessions are FAILED at once; if the worker had gone silent (missed its heartbeat deadline,
  // whether or not ExpireSilentWorkers noticed yet), they wait `reconnect_grace` for it to
  // come back.
  void Detach(const std::string& worker_name, const std::string& reason);
  void Heartbeat(const std::string& worker_name, const v1::WorkerHeartbeat& beat);
  // A worker's report on a session; INVALID_ARGUMENT if the session is not on that worker.
  absl::Status OnWorkerEvent(const std::string& worker_name, const v1::WorkerSessionEvent& event);

  // Chooses a worker, allocates GPUs and sends the start command: answers STARTING with the
  // worker and GPUs; the worker's outcome (RUNNING, or FAILED with why) is reported as an event.
  // RESOURCE_EXHAUSTED if nothing fits; UNAVAILABLE with no online worker. Idempotent: a
  // session already here is not started again; the call gets its state, and a state past
  // STARTING is reported again (the first report may be what the caller is missing).
  absl::StatusOr<v1::ControllerSessionResponse> StartSession(const std::string& session_id,
                                                             const v1::SessionSpec& spec);
  // Sends stop and waits up to grace + `wait` for the exit (reported as an event).
  // NOT_FOUND if the session is unknown here.
  absl::StatusOr<v1::ControllerSessionResponse> StopSession(const std::string& session_id,
                                                           absl::Duration grace,
                                                           absl::Duration wait);
  // Hibernates (SIGSTOP) or wakes (SIGCONT) a session and waits up to `wait` for the worker to
  // confirm (the change is reported as an event). FAILED_PRECONDITION unless it is RUNNING
  // (hibernate) or HIBERNATED (wake).
  absl::StatusOr<v1::ControllerSessionResponse> SetHibernated(const std::string& session_id,
                                                             bool hibernate, absl::Duration wait);
  // Where a session's log lives: its worker (by session, or by worker id for sessions that
  // already ended) and that worker's channel. NOT_FOUND / UNAVAILABLE (worker offline).
  absl::StatusOr<std::pair<std::string, std::shared_ptr<WorkerChannel>>> LogSource(
      const std::string& session_id, const std::string& worker_id);
  // Sends stop without waiting (for sessions the API server no longer wants).
  void RequestStop(const std::string& session_id, absl::Duration grace);
  absl::StatusOr<v1::SessionStatusResponse> SessionStatus(const std::string& session_id);
  // The worker's latest CPU/memory sample of a session.
  void OnMetrics(const std::string& worker_name, const v1::WorkerMetrics& metrics);
  absl::StatusOr<v1::SessionMetricsResponse> Metrics(const std::string& session_id);

  // Online workers serving `capability` at a version `matches` accepts.
  std::vector<InvokeTarget> WorkersWithCapability(
      const std::string& capability, const std::function<bool(const std::string& version)>& matches);

  // Closes the streams of workers whose heartbeat deadline passed, and fails the sessions of
  // workers that stayed offline past the reconnect grace period.
  void ExpireSilentWorkers();

  // The API server cordoned this controller (a cordon or a drain): no new session is placed
  // here, and every worker, now and as it connects, is told so (DrainCommand) and refuses new
  // sessions and invokes; `false` ends it. Idempotent.
  // `as_of`: when the API server's word was current (a heartbeat: when it was sent). An older
  // word than the last one applied is ignored: a heartbeat answered before an uncordon must not
  // undo it.
  void SetDraining(bool draining, absl::Time as_of);

  FleetSnapshot Snapshot();
  // Bumped whenever capacity changes (a worker comes or goes, GPUs are taken or freed), so
  // the API link can heartbeat early instead of advertising stale capacity.
  uint64_t generation() const { return generation_.load(); }
  std::vector<v1::Worker> Workers();

 private:
  struct WorkerState {
    std::string id;
    std::string name;
    std::string node_id;
    std::vector<v1::GpuInfo> gpus;
    std::vector<std::string> skills;
    std::vector<v1::CapabilityInfo> capabilities;
    std::shared_ptr<WorkerPulse> pulse;  // Its heartbeats (and the attach of its stream).
    std::shared_ptr<WorkerChannel> channel;  // null when offline
    bool silent = false;            // Its stream was closed for missed heartbeats.
    absl::Time offline_since;       // Set while offline with sessions kept in grace.
    std::set<std::string> sessions;
    // Its GPUs free in the ledger and the most memory among them: kept with its sessions (see
    // Reindex), so a snapshot adds them up instead of looking up every GPU under the lock.
    int free_gpus = 0;
    int64_t max_free_memory = 0;
  };
  struct SessionState {
    std::string worker_name;
    std::vector<std::string> gpu_uuids;
    v1::SessionPhase phase = v1::SESSION_PHASE_STARTING;
    int64_t pid = 0;
    std::string message;
    v1::ResourceUsage usage;
    absl::Time sampled_at;
  };

  absl::StatusOr<Placement> Place(const std::string& session_id, const v1::SessionSpec& spec)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Release(const std::string& session_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RebuildInventory() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `w`'s GPUs, as a snapshot lists each worker's.
  static void AddWorkerRoom(const WorkerState& w, v1::ControllerCapacity* capacity);
  // Puts `worker` where its sessions now place it in load_order_ (out of it while offline;
  // `chosen`: behind its equals), and counts its free GPUs again.
  void Reindex(WorkerState& worker, bool chosen = false) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands the session's state to the sink, numbered in order with every other change.
  void Report(const std::string& session_id, const SessionState& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks one session FAILED, releases its GPUs, reports it and forgets it.
  void FailSession(const std::string& session_id, const std::string& message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fails every session of the worker; returns how many.
  size_t FailSessionsOf(WorkerState& worker, const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::SessionEvent MakeEvent(const std::string& session_id, const SessionState& s) const;
  v1::ControllerSessionResponse MakeResponse(const std::string& session_id,
                                             const SessionState& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string node_id_;
  const absl::Duration heartbeat_interval_;
  const int missed_beats_;
  EventSink sink_;
  const absl::Duration reconnect_grace_;

  // Taken after mu_ where both are (RegisterWorker); a heartbeat takes it alone, shared.
  std::shared_mutex pulses_mu_;
  std::map<std::string, std::shared_ptr<WorkerPulse>> pulses_ ABSL_GUARDED_BY(pulses_mu_);

  std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::string, WorkerState> workers_ ABSL_GUARDED_BY(mu_);
  // What the online workers have, for Snapshot: GPU models, skills and capabilities, each once.
  // Rebuilt only after a worker came, went or changed its skills, not on every snapshot (at
  // 1,000 workers the rebuild was most of the controller's time under its lock).
  struct Inventory {
    std::vector<std::string> gpu_models;
    std::vector<std::string> skills;
    std::vector<v1::CapabilityInfo> capabilities;
  };
  Inventory inventory_ ABSL_GUARDED_BY(mu_);
  bool inventory_stale_ ABSL_GUARDED_BY(mu_) = true;
  // The online ones, in placement's order of preference (entries point into workers_).
  WorkerLoadOrder<WorkerState> load_order_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, SessionState> sessions_ ABSL_GUARDED_BY(mu_);
  GpuLedger gpus_ ABSL_GUARDED_BY(mu_);
  const std::unique_ptr<PlacementPolicy> policy_;  // Called under mu_ only.
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> draining_{false};
  absl::Time draining_as_of_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace gantry::controller
