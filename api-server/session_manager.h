// The session use cases of the API server: create (validate, store, select a controller,
// place, record the outcome), get, list, delete. Plain domain logic; SessionServiceImpl only
// translates. Thread-safe; blocking.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "api-server/authenticator.h"
#include "api-server/controller_client.h"
#include "api-server/controller_store.h"
#include "api-server/placement_resumer.h"
#include "api-server/session_store.h"
#include "api-server/template_store.h"

namespace gantry::api {

class SessionManager {
 public:
  SessionManager(SessionStore* sessions, ControllerStore* controllers, ControllerClient* client,
                 TemplateStore* templates, int max_placement_attempts = 3)
      : sessions_(sessions),
        controllers_(controllers),
        client_(client),
        templates_(templates),
        max_attempts_(max_placement_attempts),
        resumer_(sessions, controllers, client, absl::ZeroDuration(), placement_store_patience_) {}

  // `deadline`: the caller's. Past it nothing waits for PostgreSQL on the caller's behalf: a
  // session the controller started whose answer cannot be stored in time (the database is not
  // answering) is acknowledged as it is durably stored, SCHEDULED, and PlacementResumer stores
  // the answer later.
  absl::StatusOr<v1::Session> Create(const Caller& caller, const v1::CreateSessionRequest& request,
                                     absl::Time deadline = absl::InfiniteFuture());
  absl::StatusOr<v1::Session> Get(const Caller& caller, const std::string& id);
  absl::StatusOr<v1::ListSessionsResponse> List(const Caller& caller,
                                                const v1::ListSessionsRequest& request);
  absl::StatusOr<v1::Session> Delete(const Caller& caller, const std::string& id);
  // RUNNING -> HIBERNATED (SIGSTOP; GPUs stay reserved) or back (SIGCONT).
  absl::StatusOr<v1::Session> SetHibernated(const Caller& caller, const std::string& id,
                                            bool hibernate);
  absl::StatusOr<v1::SessionMetrics> Metrics(const Caller& caller, const std::string& id);
  // Relays the session's output to `sink` (see ControllerClient::StreamLogs).
  absl::Status StreamLogs(const Caller& caller, const v1::StreamLogsRequest& request,
                          const std::function<bool(const v1::LogEntry&)>& sink,
                          const std::function<bool()>& cancelled);

 private:
  // The session a retried create (same request_id) finds, its placement finished if the first
  // attempt left it SCHEDULED.
  absl::StatusOr<v1::Session> Retried(const std::string& id, absl::Time deadline);
  absl::Status NoCapacityError(const v1::CreateSessionRequest& request);

  SessionStore* sessions_;
  ControllerStore* controllers_;
  ControllerClient* client_;
  TemplateStore* templates_;
  int max_attempts_;
  // How long a controller's answer to CreateSession is retried into PostgreSQL while it is
  // unreachable, before the client gets UNAVAILABLE (a retry with its request_id then finds the
  // session; the abandoned-placement sweep is the last resort).
  absl::Duration placement_store_patience_ = absl::Seconds(20);
  PlacementResumer resumer_;
};

}  // namespace gantry::api
