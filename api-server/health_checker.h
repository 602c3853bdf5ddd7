// The API side of controller liveness. Every interval, one API server replica — the one holding
// a PostgreSQL advisory lock on its own connection — calls ControllerService.HealthCheck on the
// controllers that need it: those whose heartbeats are late, that are not healthy, or that
// missed the last check, every round; the rest (a heartbeat on time already proves it alive) in
// a slow sweep, each at least every `reachability_sweep`, oldest first, a share each round. At
// 10,000 controllers a round calls a few hundred, not all of them. A controller that misses
// `unhealthy_after` checks in a row is unhealthy (no new sessions): unreachable, whether or not
// its heartbeats arrive, which are a separate condition (a one-way partition lets them out);
// one whose heartbeats are late is unhealthy at its first miss. One that misses `offline_after`
// and whose heartbeats stopped as long is offline and its live sessions become FAILED with the
// reason. Only an answered check makes a controller healthy again. If the leader dies, its
// connection closes, the lock is free, and another replica leads from its next tick: within one
// interval (and calls every controller in its first sweep, spread as above).
//
// Runs its own thread; Start/Stop from main.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "api-server/controller_client.h"
#include "api-server/placement_resumer.h"
#include "api-server/session_store.h"

namespace pqxx {
template <typename> class basic_connection_base;
class connect_direct;
}  // namespace pqxx

namespace gantry {
class PgPool;
}

namespace gantry::api {

struct HealthCheckConfig {
  std::string dsn;  // For the leader's own connection, which holds the lock.
  absl::Duration interval = absl::Seconds(5);
  // How long one check may take. Slow is not dead: a controller busy placing many sessions on
  // a loaded node can take a few hundred milliseconds to answer, and must not be taken out of
  // placement for it.
  absl::Duration timeout = absl::Seconds(2);
  int unhealthy_after = 3;
  // A heartbeat older than this is late (the controllers' heartbeat interval, and some slack).
  absl::Duration heartbeat_late = absl::Seconds(6);
  // Every controller is called at least this often, late or not: reachability, which its
  // heartbeats do not prove (they travel the other way).
  absl::Duration reachability_sweep = absl::Seconds(60);
  int offline_after = 6;
  // A controller that deregistered (shut down) and has not registered again within this long
  // is lost: its sessions become FAILED. Shorter than a restart would be a false alarm.
  absl::Duration deregistered_grace = absl::Minutes(2);
  // A session SCHEDULED for longer than this was abandoned by the replica placing it (as long
  // as a controller call may take): it is resumed (see PlacementResumer).
  absl::Duration placement_resume_after = absl::Seconds(30);
  // One whose controller is unhealthy for this long is FAILED, releasing its GPUs.
  absl::Duration placement_timeout = absl::Seconds(90);
  // One whose controller stays healthy (it answers health checks and heartbeats) but never
  // answers for the session in time is FAILED only after this long: a busy controller is slow,
  // not gone, and may be starting the session right now.
  absl::Duration placement_give_up = absl::Minutes(5);
  // Whether the schema is migrated and the database reachable; checks wait until it is.
  std::function<bool()> database_ready = [] { return true; };
};

class HealthChecker {
 public:
  HealthChecker(HealthCheckConfig config, PgPool* pool, SessionStore* sessions,
                ControllerClient* client, PlacementResumer* resumer);
  ~HealthChecker();

  void Start();
  void Stop();
  bool leading() const;

 private:
  void Loop();
  bool TryLead();
  void CheckAll();
  struct Target {
    std::string id, endpoint, name;
    bool late = false;    // Its heartbeats are late.
    bool urgent = false;  // Late, not healthy, or it missed the last check: called every round.
  };
  // The controllers to call this round: every urgent one, and the sweep's share of the rest.
  std::vector<Target> ChooseTargets(std::vector<Target> listed);
  struct HealthyAnswer {
    std::string controller_id;
    v1::HealthCheckResponse answer;
  };
  // Stores what the controllers that answered reported, and that they are healthy.
  void RecordHealthy(const std::vector<HealthyAnswer>& healthy);
  void FailSessionsOfLostControllers();
  void RecoverAbandonedPlacements();

  HealthCheckConfig config_;
  PgPool* pool_;
  SessionStore* sessions_;
  ControllerClient* client_;
  PlacementResumer* resumer_;
  std::unique_ptr<pqxx::basic_connection_base<pqxx::connect_direct>> lock_conn_;  // Loop thread only.
  // When this leader last called each controller (loop thread only): the sweep's order.
  std::map<std::string, absl::Time> last_called_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool leading_ = false;
  std::thread thread_;
};

}  // namespace gantry::api
