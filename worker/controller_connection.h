// The worker's one connection to its controller: RegisterWorker, then the Connect stream.
// Reconnects with exponential backoff and jitter; sessions keep running while it is down and
// are re-reported in the hello of the next stream. Events raised while disconnected are kept
// (bounded) and sent after the hello.
#pragma once

#include <grpcpp/channel.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/redialer.h"
#include "gantry/v1/worker_service.grpc.pb.h"
#include "worker/invoke_runner.h"
#include "worker/log_streamer.h"
#include "worker/session_runner.h"

namespace gantry::worker {

struct ConnectionConfig {
  std::string controller_url;
  // How often each running session's CPU and memory are sampled and sent.
  absl::Duration metrics_interval = absl::Seconds(5);
  // Live GPU figures for heartbeats (NVML); empty: the registered ones are repeated.
  std::function<std::vector<v1::GpuInfo>()> gpu_source;
  // GPU memory per pid (NVML), for per-session GPU memory; may be empty.
  std::function<std::map<pid_t, int64_t>()> gpu_memory_by_pid;
  v1::RegisterWorkerRequest registration;
  size_t max_pending_events = 10000;
};

class ControllerConnection {
 public:
  // `controller`: the controller's address; a fresh channel for every connection attempt, so
  // that a reconnect never waits on a channel stuck in its own backoff, and the waits between
  // attempts.
  ControllerConnection(ConnectionConfig config, Redialer* controller);
  ~ControllerConnection();

  // Must be called before Start; the runner's events are sent through Send.
  void set_runner(SessionRunner* runner) { runner_ = runner; }
  void set_log_streamer(LogStreamer* logs) { logs_ = logs; }
  void set_invoke_runner(InvokeRunner* invokes) { invokes_ = invokes; }
  // Replaces the skills and models reported from now on (registration and heartbeats).
  void SetSkills(const std::vector<std::string>& skills, const std::vector<v1::ModelInfo>& models);

  void Start();
  // Closes the stream and stops reconnecting.
  void Stop();

  // Sends a session event now, or keeps it for the next stream.
  void Send(const v1::WorkerSessionEvent& event);
  // Sends a log batch now; false if there is no stream (log streams do not survive a reconnect).
  bool SendLogs(const v1::WorkerLogLines& batch);
  // Sends invoke output now; false if there is no stream (requests do not survive a reconnect).
  bool SendInvokeOutput(const v1::WorkerInvokeOutput& output);
  // True while the stream to the controller is up (readiness).
  bool connected();

 private:
  using Stream = grpc::ClientReaderWriter<v1::WorkerMessage, v1::ControllerMessage>;

  void Loop();
  // One stream's lifetime; returns when it ends.
  void RunStream(int32_t* heartbeat_ms);
  // An invoke's command (and a drain's part for invokes), run on the reading thread: none
  // waits (InvokeRunner), so an invoke reaches its handler without a hand-off. False if the
  // command is for the queue.
  bool ExecuteInvokeCommand(const v1::ControllerMessage& command);
  // The CommandQueue lane of a command: its session's id for a session's lifecycle, else "".
  static std::string SessionLane(const v1::ControllerMessage& command);
  // Acts on one command from the controller (on one of the stream's CommandQueue threads).
  void Execute(const v1::ControllerMessage& command);
  bool Write(const v1::WorkerMessage& message);
  Stream* CurrentStream() ABSL_LOCKS_EXCLUDED(mu_);

  ConnectionConfig config_;
  Redialer* const controller_;
  SessionRunner* runner_ = nullptr;
  LogStreamer* logs_ = nullptr;
  InvokeRunner* invokes_ = nullptr;

  // Writes to the stream are serialised under write_mu_, which a write to a controller that
  // stopped reading holds until the stream ends. mu_ is never held across a write, so Stop,
  // skills and heartbeat bookkeeping never wait behind one.
  std::mutex write_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  // Set under write_mu_ too; once cleared, RunStream takes write_mu_ before freeing the stream.
  Stream* stream_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::deque<v1::WorkerSessionEvent> pending_ ABSL_GUARDED_BY(write_mu_);
  bool sample_soon_ ABSL_GUARDED_BY(mu_) = false;  // a session started: sample metrics at once
  std::vector<std::string> skills_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::ModelInfo> models_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace gantry::worker
