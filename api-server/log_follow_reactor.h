// SessionService.StreamLogs on gRPC's callback API both ways (RelayedStream): a log being
// followed parks no thread in the API server, and a client that hangs up cancels the relay,
// and through it the worker's reading, at once (no side thread polling for it). Admission (the
// database check, an API key, the session's lookup) runs as a job on a small pool.
#pragma once

#include <optional>
#include <string>

#include "api-server/authenticator.h"
#include "api-server/database_monitor.h"
#include "api-server/relayed_stream.h"
#include "api-server/session_manager.h"
#include "api-server/stream_admission.h"
#include "api-server/stream_quota.h"
#include "gantry/v1/session_service.grpc.pb.h"

namespace gantry::api {

struct LogFollowDeps {
  const DatabaseMonitor* db;
  Authenticator* auth;
  StreamQuota* streams;
  SessionManager* sessions;
  ControllerClient* client;
  WorkPool* jobs;  // Drained (not stopped) at shutdown: a queued job owns its stream.
};

class LogFollowReactor final : public RelayedStream<v1::LogEntry> {
 public:
  // Starts relaying the log `request` asks for (see RelayedStream for its lifetime).
  static LogFollowReactor* Start(const LogFollowDeps& deps, grpc::CallbackServerContext* context,
                                 const v1::StreamLogsRequest& request);

 private:
  LogFollowReactor(const LogFollowDeps& deps, grpc::CallbackServerContext* context,
                   const v1::StreamLogsRequest& request);

  void Admit();  // A job.
  void OnItemLocked(const ControllerTarget&, int64_t, v1::LogEntry&) override {}

  const LogFollowDeps deps_;
  const v1::StreamLogsRequest request_;
  const CallCredentials credentials_;

  std::optional<StreamQuota::Lease> lease_ ABSL_GUARDED_BY(mu_);
  v1::ControllerStreamLogsRequest upstream_request_;  // Set before the relay starts, then read only.
};

}  // namespace gantry::api
