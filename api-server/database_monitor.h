// Keeps the API server honest about its database: applies migrations as soon as PostgreSQL is
// reachable (so a server started while it is down comes up by itself), then pings it, and
// flips the gRPC health service between SERVING and NOT_SERVING to match. Handlers ask
// CheckReady() first and answer UNAVAILABLE while the database is not usable.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace grpc {
class Server;
}

namespace gantry {
class PgPool;
}

namespace gantry::api {

class DatabaseMonitor {
 public:
  // `on_first_ready` runs once, after migrations, before the server reports SERVING
  // (e.g. installing the bootstrap admin key).
  DatabaseMonitor(PgPool* pool, absl::Duration interval,
                  std::function<absl::Status()> on_first_ready);
  ~DatabaseMonitor();

  void Start(grpc::Server* server);
  void Stop();

  absl::Status CheckReady() const;

 private:
  void Loop();
  void SetServing(bool serving);

  PgPool* pool_;
  absl::Duration interval_;
  std::function<absl::Status()> on_first_ready_;
  grpc::Server* server_ = nullptr;
  std::atomic<bool> migrated_{false};
  std::atomic<bool> reachable_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace gantry::api
