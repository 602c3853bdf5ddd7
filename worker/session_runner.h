// Turns the controller's session commands into supervised processes and reports what happens
// to them. Builds each session's environment from scratch (nothing of the worker's own, which
// holds secrets, leaks in) with CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES naming exactly
// the session's GPUs. Thread-safe.
#pragma once

#include <functional>
#include <atomic>
#include <map>
#include <set>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "gantry/v1/worker_service.pb.h"
#include "worker/home_cleaner.h"
#include "worker/log_pump.h"
#include "worker/process_supervisor.h"
#include "worker/session_cgroups.h"
#include "worker/session_identity.h"

namespace gantry::worker {

class SessionRunner {
 public:
  // Receives every event to send up the stream.
  using EventSink = std::function<void(const v1::WorkerSessionEvent&)>;

  // Session output goes through `pump` into <session_dir>/<id>.log; `cgroups` confines sessions
  // where it can; `identities` says who each runs as, its home <session_dir>/<id>/ its own
  // (0700); `keeper_path` is the gantry-keeper program each starts through. All must outlive
  // the runner.
  SessionRunner(std::string session_dir, std::string keeper_path, LogPump& pump, const SessionCgroups& cgroups,
                SessionIdentities& identities, EventSink sink);
  ~SessionRunner();

  void Start(const v1::StartSessionCommand& command);
  void Stop(const v1::StopSessionCommand& command);
  // SIGSTOP / SIGCONT the session's process group; reports HIBERNATED / WOKEN.
  void Hibernate(const std::string& session_id);
  void Wake(const std::string& session_id);
  // Stops every session (SIGTERM, grace, SIGKILL) and waits for them: used when draining.
  void StopAll(absl::Duration grace);
  // What runs now, for the hello after a (re)connect.
  std::vector<v1::RunningSession> Running() const;
  int active() const;
  bool IsRunning(const std::string& session_id) const { return supervisor_.Has(session_id); }
  // While draining (DrainCommand), Start refuses new sessions; running ones carry on.
  void SetDraining(bool draining) { draining_.store(draining); }
  // Session id -> its process group, for the metrics sampler.
  std::map<std::string, pid_t> Groups() const;

 private:
  void OnExit(const ExitInfo& exit);
  // Hibernates sessions that have written nothing for their idle_timeout.
  void IdleLoop();
  void Suspend(const std::string& session_id, const std::string& why);
  std::vector<std::string> BuildEnv(const v1::StartSessionCommand& command, const std::string& home) const;
  // Makes the session's home directory, owned by `user` and 0700; returns its path.
  absl::StatusOr<std::string> MakeHome(const std::string& session_id, const SessionUser& user) const;

  void ReportStartFailure(const std::string& session_id, const std::string& why);
  // Start's work, once the session is marked starting.
  void StartNow(const v1::StartSessionCommand& command);
  // Returns once `session_id` is not starting: its STARTED (or start failure) is reported.
  void WaitUntilStarted(const std::string& session_id);

  const std::string session_dir_;
  LogPump& pump_;
  const SessionCgroups& cgroups_;
  SessionIdentities& identities_;
  EventSink sink_;
  // Held while reporting an exit, a hibernate or a wake, so that a session's reports of these
  // never cross.
  mutable std::mutex report_mu_;
  mutable std::mutex mu_;
  // Sessions whose start is under way (several at once, CommandQueue's lanes); their exits,
  // hibernates and wakes wait for started_.
  std::set<std::string> starting_ ABSL_GUARDED_BY(mu_);
  std::condition_variable started_;
  std::atomic<bool> draining_{false};
  std::map<std::string, std::vector<std::string>> gpus_ ABSL_GUARDED_BY(mu_);
  struct Idle {
    absl::Duration timeout;
    absl::Time armed;  // Started or woken: output before this does not count.
  };
  std::map<std::string, Idle> idle_ ABSL_GUARDED_BY(mu_);  // Armed idle clocks.
  std::map<std::string, absl::Duration> timeouts_ ABSL_GUARDED_BY(mu_);  // Each session's idle_timeout.
  std::condition_variable idle_cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread idle_thread_;
  HomeCleaner cleaner_;  // Ended sessions' homes; outlives the supervisor, whose exits feed it.
  ProcessSupervisor supervisor_;  // Last: its threads call back into the members above.
};

}  // namespace gantry::worker
