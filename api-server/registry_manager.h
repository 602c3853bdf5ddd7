// The controller registry use cases: join-token registration, heartbeats, deregistration and
// the one route of session phase changes from controllers (their ordered, numbered event
// stream). Thread-safe; blocking.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "api-server/controller_event_store.h"
#include "api-server/controller_store.h"
#include "api-server/node_enrollment.h"
#include "api-server/session_store.h"
#include "common/identity.h"
#include "gantry/v1/registry_service.pb.h"

namespace gantry::api {

struct RegistryConfig {
  absl::Duration token_lifetime = absl::Hours(24 * 30);
  absl::Duration heartbeat_interval = absl::Seconds(5);
  // How long a live session may be missing from its controller's heartbeats before it is
  // lost (FAILED). Longer than a controller restart takes to re-adopt its workers' sessions.
  absl::Duration unheld_session_grace = absl::Minutes(2);
};

// What becomes of a change `controller_id` reported for a session as stored now: applied; ignored
// (not its session, stale, or a repeat); or ignored with the controller told to stop the
// session's process (the session ended here, e.g. deleted while it was starting).
ReportVerdict JudgeControllerReport(const std::string& controller_id, const v1::Session& stored,
                                    const ReportedChange& reported);

class RegistryManager {
 public:
  RegistryManager(RegistryConfig config, const NodeEnrollment* enrollment, ControllerStore* controllers,
                  SessionStore* sessions, ControllerEventStore* events)
      : config_(std::move(config)),
        enrollment_(enrollment),
        controllers_(controllers),
        sessions_(sessions),
        events_(events) {}

  // `caller_key_sha256`: the caller's certificate key, which must hold the name (see
  // NodeEnrollment::AdmitRegistration).
  absl::StatusOr<v1::RegisterControllerResponse> Register(const Identity& caller, const std::string& caller_key_sha256,
                                                          const v1::RegisterControllerRequest& request);
  // Each acts only on the controller `caller`'s certificate names (PERMISSION_DENIED otherwise).
  // `deadline`: the caller's; a heartbeat that cannot be stored by then is UNAVAILABLE.
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const Identity& caller, const v1::HeartbeatRequest& request,
                                                  absl::Time deadline = absl::InfiniteFuture());
  absl::Status Deregister(const Identity& caller, const v1::DeregisterRequest& request);
  // Applies a part of the controller's event stream (see ControllerEventStore) and answers how
  // far it is applied, with the sessions the controller should stop.
  absl::StatusOr<v1::ReportSessionEventsResponse> ReportSessionEvents(
      const Identity& caller, const v1::ReportSessionEventsRequest& request);

 private:
  // The reverse reconciliation's outcome: live sessions PostgreSQL has on the controller that
  // it has not listed for the grace are lost, and ended here.
  void EndLostSessions(const std::string& controller_id, const std::vector<std::string>& lost);

  RegistryConfig config_;
  const NodeEnrollment* enrollment_;
  ControllerStore* controllers_;
  SessionStore* sessions_;
  ControllerEventStore* events_;
};

}  // namespace gantry::api
