// A stand-in controller for measuring one real gantry-worker alone: it serves WorkerService
// (mTLS, a controller certificate), takes the worker's registration and Connect stream, sends
// it start and stop commands and records its session reports. Nothing else of a controller:
// no placement, no API server, no database, so what a scenario measures through it is the
// worker's own work.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/time/time.h"
#include "common/grpc_server.h"
#include "gantry/v1/worker_service.grpc.pb.h"
#include "tests/support/test_env.h"

namespace gantry::bench {

class BenchController {
 public:
  // Serves on a free loopback port, with a controller certificate issued by `pki`.
  explicit BenchController(testing::Pki& pki);
  ~BenchController();

  std::string address() const;
  // Waits until a worker's Connect stream is open.
  bool WaitForWorker(absl::Duration timeout);
  // Sends a start command for `session_id` (`spec`, no GPUs), and waits for the worker's
  // STARTED or START_FAILED report: true if it started.
  bool Start(const std::string& session_id, const v1::SessionSpec& spec, absl::Duration timeout);
  // Sends a stop command and waits for the EXITED report.
  bool Stop(const std::string& session_id, absl::Duration timeout);

 private:
  class Service;
  std::unique_ptr<Service> service_;
  RunningServer server_;
};

}  // namespace gantry::bench
