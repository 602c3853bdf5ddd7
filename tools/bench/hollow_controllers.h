// Hollow controllers, the API server's counterpart of hollow workers: many simulated
// controllers, each registered with its own certificate and heartbeating over its own mTLS
// connection, and each reachable by the API server at its own loopback address, where a
// ControllerService answers health checks and takes every placement at once, reporting it
// RUNNING on the event route as a real controller does. The API server and PostgreSQL under
// them do all their real work.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/grpc_server.h"
#include "common/pg_pool.h"

namespace gantry::bench {

struct HollowControllerOptions {
  std::string api_address;
  std::string join_token;
  std::string ca_dir;  // ca.crt and ca.key: every certificate is issued here
  std::string work_dir;
  // The fleet's database: a placement's controller is looked up there, since controllers that
  // share an address (below) cannot tell which of them a call was for.
  std::string database_dsn;
  std::string name_prefix = "hollow-controller-";
  int count = 1;
  int gpus_each = 8;  // on one simulated worker each
  // Distinct addresses the API server reaches them at (one connection each); 0: one per
  // controller, as in a real fleet. Fewer where the file descriptor limit is too low for two
  // connections per controller in one process.
  int endpoints = 0;
};

class HollowControllers {
 public:
  explicit HollowControllers(HollowControllerOptions options);
  ~HollowControllers();

  // Serves their ControllerService, issues the certificates and registers every controller
  // (64 at a time); returns once all are registered.
  absl::Status Start();
  // Heartbeats every controller once per `interval`, spread evenly over it, until Stop. Each
  // beat is due at a fixed time; one still waiting for its answer when the next falls due
  // delays that one, so a slow API server shows as lag rather than as fewer beats.
  void StartHeartbeats(absl::Duration interval);
  void StopHeartbeats();

  // From each answered heartbeat since the last call: the time from when it fell due until its
  // answer came (the API server answers once it is stored), in ms; and the beats that failed.
  std::vector<double> TakeLagsMs();
  int64_t TakeFailures();
  int64_t placements() const { return placements_.load(); }
  int64_t health_checks() const { return health_checks_.load(); }

 private:
  struct Controller;
  class Service;
  void Beat(Controller* c, absl::Time due);
  // Reports `session_id` RUNNING as the controller it is placed on (CreateSession's answer is
  // never stored: a session is RUNNING once its controller reports it).
  void ReportRunning(const std::string& session_id, int gpus);
  void Scheduler(absl::Duration interval);

  HollowControllerOptions options_;
  std::vector<RunningServer> servers_;
  std::vector<std::unique_ptr<Controller>> controllers_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<PgPool> db_;
  std::map<std::string, Controller*> by_id_;  // Filled once every controller is registered.
  std::atomic<int64_t> placements_{0}, health_checks_{0}, failures_{0};
  std::atomic<int> in_flight_{0};
  std::atomic<bool> stopping_{false};
  std::thread scheduler_;
  // Controllers whose beat waited for their last answer, with its due time: the scheduler
  // thread sends them.
  std::mutex ready_mu_;
  std::condition_variable ready_cv_;
  std::deque<std::pair<Controller*, absl::Time>> ready_;
  std::mutex lags_mu_;
  std::vector<double> lags_ms_;
};

}  // namespace gantry::bench
