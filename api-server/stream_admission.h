// What every stream's admission does before it is served (WatchSession, StreamLogs, Invoke):
// the database ready (where the call needs it), the caller authenticated, and a place among the
// streams that caller may hold open. Run from a reactor's job, never a reaction: an API key is
// looked up in PostgreSQL.
#pragma once

#include "absl/status/statusor.h"
#include "api-server/authenticator.h"
#include "api-server/database_monitor.h"
#include "api-server/stream_quota.h"
#include "common/status.h"

namespace gantry::api {

struct StreamAdmission {
  Caller caller;
  StreamQuota::Lease lease;  // Gives the place back when dropped.
};

// `db` may be null (a call that needs no database of its own to start).
inline absl::StatusOr<StreamAdmission> AdmitStream(const DatabaseMonitor* db, Authenticator* auth,
                                                   StreamQuota* streams, const CallCredentials& credentials) {
  if (db != nullptr) RETURN_IF_ERROR(db->CheckReady());
  ASSIGN_OR_RETURN(Caller caller, auth->AuthenticateClient(credentials));
  ASSIGN_OR_RETURN(StreamQuota::Lease lease, streams->Acquire(caller.principal));
  return StreamAdmission{std::move(caller), std::move(lease)};
}

}  // namespace gantry::api
