// The session use cases of the API server: create (validate, store, select a controller,
// place, record the outcome), get, list, delete. Plain domain logic; SessionServiceImpl only
// translates. Thread-safe; blocking.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "api-server/authenticator.h"
#include "api-server/controller_client.h"
#include "api-server/controller_store.h"
#include "api-server/placement_resumer.h"
#include "api-server/preemptor.h"
#include "api-server/session_placer.h"
#include "api-server/session_store.h"
#include "api-server/session_waiter.h"
#include "api-server/session_watch_hub.h"
#include "api-server/priority_class_store.h"
#include "api-server/template_store.h"
#include "common/work_pool.h"

namespace gantry::api {

struct LogUpstream {
  ControllerTarget controller;
  v1::ControllerStreamLogsRequest request;
};

// How long a queued create waits for room when it names no queue_timeout.
inline constexpr absl::Duration kDefaultQueueTimeout = absl::Hours(1);

// Where a create may be placed: its GPUs, skills and the controllers it names.
PlacementRequest PlacementFor(const v1::CreateSessionRequest& request);

class SessionManager {
 public:
  // `changes`: how this replica hears of stored changes, which is how a caller waiting for an
  // outcome (wait_for_running, a hibernate, a wake) learns it: outcomes reach PostgreSQL on the
  // controllers' event route, through whichever replica a controller reports to.
  // `start_threads`: how many acknowledged sessions are started at once (controller calls, off
  // the creates' path); past `max_starts_queued` waiting, a create starts its own session before
  // answering, which slows a burst down instead of growing memory.
  SessionManager(SessionStore* sessions, ControllerStore* controllers, ControllerClient* client,
                 TemplateStore* templates, SessionWatchHub* changes, int max_placement_attempts = 3,
                 int start_threads = 16, size_t max_starts_queued = 4096)
      : sessions_(sessions),
        controllers_(controllers),
        client_(client),
        templates_(templates),
        max_attempts_(max_placement_attempts),
        waiter_(changes, sessions),
        placer_(sessions, client),
        resumer_(controllers, client, absl::ZeroDuration()),
        starting_(start_threads, max_starts_queued) {}

  // Validates, chooses candidates and reserves the session's GPUs on the first with room,
  // storing it SCHEDULED. Without request.wait_for_running that is the answer: its controller
  // is asked to start it afterwards (on the pool's threads; a refusal there moves it to the
  // next candidate, or fails it with every reason). With it, the controller is asked first, as
  // SessionPlacer describes, and a refusal from every candidate leaves nothing written; once a
  // controller took it, the create answers with what its controller reported (RUNNING, or
  // FAILED with why), or SCHEDULED if no report came within kOutcomeWait (WatchSession has
  // the rest). `deadline`: the caller's; every wait ends a second before it.
  // Where no controller has room, a create of a priority class above preemptible sessions'
  // preempts them (Preemptor) and answers PENDING, placed once they have stopped (with
  // wait_for_running, once it runs, within kPreemptionWait); else, if request.queue, it is
  // queued; else the refusal is the answer.
  absl::StatusOr<v1::Session> Create(const Caller& caller, const v1::CreateSessionRequest& request,
                                     absl::Time deadline = absl::InfiniteFuture());
  // Where spec.priority_class is resolved (its value stored with the session). Unset: no
  // classes, and a spec naming one is refused.
  void set_priority_classes(PriorityClassStore* classes) { classes_ = classes; }
  // Where a create that does not fit looks for sessions of lower priority to preempt. Unset:
  // nothing is preempted.
  void set_preemptor(Preemptor* preemptor) { preemptor_ = preemptor; }
  absl::StatusOr<v1::Session> Get(const Caller& caller, const std::string& id);
  // Get, as GetSession answers it: a queued session with its QueuePosition condition (List's
  // have it too).
  absl::StatusOr<v1::Session> Describe(const Caller& caller, const std::string& id);
  absl::StatusOr<v1::ListSessionsResponse> List(const Caller& caller,
                                                const v1::ListSessionsRequest& request);
  absl::StatusOr<v1::Session> Delete(const Caller& caller, const std::string& id);
  // RUNNING -> HIBERNATED (SIGSTOP; GPUs stay reserved) or back (SIGCONT); answers once the
  // controller's report of it is stored (or as stored after kOutcomeWait).
  absl::StatusOr<v1::Session> SetHibernated(const Caller& caller, const std::string& id,
                                            bool hibernate);
  absl::StatusOr<v1::SessionMetrics> Metrics(const Caller& caller, const std::string& id);
  // Where the session's log comes from: its controller, and what to ask it for (the request
  // checked, the session looked up for `caller`).
  absl::StatusOr<LogUpstream> LogUpstreamOf(const Caller& caller, const v1::StreamLogsRequest& request);

  // Starts a queued session QueueDispatcher has placed on `target` (the rest of its candidates
  // `others`), as an acknowledged create's session is started.
  void StartQueued(const v1::Session& session, const ControllerTarget& target, std::vector<ControllerTarget> others);

  // At shutdown: lets the starts in progress finish and drops those queued, returning how many.
  // Those stay SCHEDULED, durable, and the health check leader's sweep starts them.
  size_t StopStarting();

 private:
  // Create's placement now: candidates, the reservation, the start (see Create).
  absl::StatusOr<v1::Session> PlaceNew(const Caller& caller, const v1::CreateSessionRequest& request, int32_t priority,
                                       absl::Time deadline);
  // The session a retried create (same request_id) finds; when the caller waits for RUNNING,
  // its placement finished if the first attempt left it SCHEDULED.
  absl::StatusOr<v1::Session> Retried(const std::string& id, absl::Time deadline, bool wait);
  // Starts an acknowledged session on the pool's threads, and returns it as acknowledged; or,
  // when the pool's queue is full, on this thread within `caller_deadline`, and returns it
  // once its controller has taken it (or FAILED, when none would).
  v1::Session StartLater(const v1::Session& session, const ControllerTarget& target, std::vector<ControllerTarget> others,
                  absl::Time caller_deadline);
  // The session as stored once it has left SCHEDULED (its controller's report arrived), or
  // after kOutcomeWait, or a second before `deadline`.
  absl::StatusOr<v1::Session> AwaitStarted(const std::string& id, absl::Time deadline);
  absl::Status NoCapacityError(const v1::CreateSessionRequest& request);
  // The same, with why the controllers tried refused.
  absl::Status NoCapacityError(const v1::CreateSessionRequest& request, const PlacementRefusals& refusals);

  SessionStore* sessions_;
  ControllerStore* controllers_;
  ControllerClient* client_;
  TemplateStore* templates_;
  PriorityClassStore* classes_ = nullptr;
  Preemptor* preemptor_ = nullptr;
  int max_attempts_;
  // How long a caller waits for a controller's report once the controller has taken the work:
  // a process start or a signal takes milliseconds; a node slower than this still finishes it,
  // and the caller sees the outcome on WatchSession.
  static constexpr absl::Duration kOutcomeWait = absl::Seconds(10);
  // How long a preempting create with wait_for_running waits for RUNNING: its victims' grace
  // and their stop come first.
  static constexpr absl::Duration kPreemptionWait = absl::Seconds(60);
  SessionWaiter waiter_;
  SessionPlacer placer_;
  PlacementResumer resumer_;
  // Last: its threads use the members above, so it stops first.
  WorkPool starting_;
};

}  // namespace gantry::api
