// Draining a controller: no new sessions (it is cordoned), then its live sessions stopped
// through the normal stop path (SessionManager::Delete: TERMINATING, the controller stops the
// process, TERMINATED), several at once, for as long as the caller's deadline allows. What is
// left is reported; draining again goes on from there, so a drain survives the replica that
// ran it. UncordonController ends it.
#pragma once

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "api-server/admin_manager.h"
#include "api-server/admin_store.h"
#include "api-server/session_manager.h"
#include "gantry/v1/admin_service.pb.h"

namespace gantry::api {

class ControllerDrainer {
 public:
  ControllerDrainer(AdminManager* admin, AdminStore* store, SessionManager* sessions)
      : admin_(admin), store_(store), sessions_(sessions) {}

  // `caller`: the admin, named in each stopped session's history. Stops sessions until
  // `deadline`.
  absl::StatusOr<v1::DrainControllerResponse> Drain(const Caller& caller, const std::string& id, absl::Time deadline);

 private:
  AdminManager* admin_;
  AdminStore* store_;
  SessionManager* sessions_;
};

}  // namespace gantry::api
