#include "api-server/session_manager.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "api-server/request_validation.h"
#include "api-server/session_stop.h"
#include "api-server/team_quota.h"
#include "common/identity.h"
#include "common/json_util.h"
#include "common/metrics.h"
#include "common/request_ids.h"
#include "common/session_phase.h"
#include "common/status.h"

namespace gantry::api {
namespace {

bool Visible(const Caller& caller, const v1::Session& session) {
  return caller.is_admin() || session.owner() == caller.principal;
}

absl::Status NotFound(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("session ", id, " not found"));
}

}  // namespace

absl::Status SessionManager::NoCapacityError(const v1::CreateSessionRequest& request) {
  ASSIGN_OR_RETURN(FleetSummary fleet, controllers_->Summary());
  const auto& gpus = request.spec().resources().gpus();
  const bool constrained = gpus.count() > 0 || !request.controller_id().empty() ||
                           !request.controller_type().empty() || !request.controller_selector().empty() ||
                           !request.spec().skills().empty();
  if (fleet.selectable_controllers == 0) {
    return absl::UnavailableError(absl::StrCat(
        "no healthy, uncordoned controller (", fleet.registered_controllers,
        " registered): start a controller or uncordon one, then retry"));
  }
  if (!constrained) {
    // Nothing about the request is hard to satisfy, so the fleet is unreachable for the moment
    // (e.g. heartbeats not yet fresh after a PostgreSQL outage): worth retrying.
    return absl::UnavailableError(absl::StrCat("no controller could take the session just now (",
                                               fleet.selectable_controllers, " healthy); retry"));
  }
  std::string where;
  if (!request.controller_id().empty()) absl::StrAppend(&where, " on controller_id ", request.controller_id());
  if (!request.controller_type().empty()) absl::StrAppend(&where, " of controller_type \"", request.controller_type(), "\"");
  if (!request.controller_selector().empty()) absl::StrAppend(&where, " matching controller_selector");
  if (!request.spec().skills().empty()) {
    absl::StrAppend(&where, " with skills [", absl::StrJoin(request.spec().skills(), ", "), "]");
  }
  if (gpus.count() == 0) {
    // Only where it may run was constrained, and nothing matches.
    const std::string field = !request.controller_id().empty()     ? "controller_id"
                              : !request.controller_type().empty() ? "controller_type"
                              : !request.controller_selector().empty() ? "controller_selector"
                                                                       : "spec.skills";
    return absl::ResourceExhaustedError(absl::StrCat(field, ": no healthy, uncordoned controller", where, " (",
                                                     fleet.selectable_controllers,
                                                     " healthy in all): check it, or start such a controller"));
  }
  const int64_t unreserved = fleet.gpus_total - fleet.gpus_reserved;
  const std::string asked = absl::StrCat(
      "spec.resources.gpus: asked for ", gpus.count(), " GPU(s)",
      gpus.min_memory_bytes() > 0 ? absl::StrCat(" with at least ", gpus.min_memory_bytes(), " bytes each") : "",
      gpus.model().empty() ? "" : absl::StrCat(" of model \"", gpus.model(), "\""), where, "; ");
  // Reservations are PostgreSQL's; free GPUs are what the workers last reported. The two differ
  // while a stopped session's process is still exiting, or a GPU is busy outside Gantry.
  std::string why;
  if (unreserved < gpus.count()) {
    why = absl::StrCat("only ", unreserved, " of the ", fleet.gpus_total, " GPU(s) on the fleet's ",
                       fleet.selectable_controllers, " healthy controller(s) are unreserved");
  } else if (fleet.max_free_gpus_per_worker < gpus.count()) {
    why = absl::StrCat(unreserved, " of the ", fleet.gpus_total, " GPU(s) on the fleet's ", fleet.selectable_controllers,
                       " healthy controller(s) are unreserved, but no one worker reports ", gpus.count(),
                       " free (the most is ", fleet.max_free_gpus_per_worker,
                       "): a session's GPUs are all on one worker, and a GPU is in use until its last session's "
                       "process has exited and its worker has said so");
  } else {
    why = absl::StrCat("no healthy controller has a worker whose free GPUs match (", unreserved, " of ",
                       fleet.gpus_total, " GPU(s) unreserved, up to ", fleet.max_free_gpus_per_worker,
                       " free on one worker)");
  }
  return absl::ResourceExhaustedError(absl::StrCat(asked, why, ". Ask for fewer or wait for GPUs to free up"));
}

absl::Status SessionManager::NoCapacityError(const v1::CreateSessionRequest& request,
                                             const PlacementRefusals& refusals) {
  absl::Status none = NoCapacityError(request);
  if (refusals.reasons.empty()) return none;
  // Every candidate unreachable is an outage to retry, not a full fleet.
  const absl::StatusCode code = refusals.all_unavailable ? absl::StatusCode::kUnavailable : none.code();
  return absl::Status(code, absl::StrCat(none.message(), " (tried ", absl::StrJoin(refusals.reasons, "; "), ")"));
}

absl::StatusOr<v1::Session> SessionManager::Create(const Caller& caller, const v1::CreateSessionRequest& original,
                                                   absl::Time deadline) {
  v1::CreateSessionRequest request = original;
  if (!request.template_id().empty()) {
    if (!IsValidName(request.template_id())) {
      return absl::InvalidArgumentError("template_id: is not a template id (1..63 of [a-z0-9._-])");
    }
    auto t = templates_->Get(request.template_id());
    if (t.status().code() == absl::StatusCode::kNotFound) {
      return absl::InvalidArgumentError(absl::StrCat("template_id: unknown template \"",
                                                     request.template_id(), "\" (see ListTemplates)"));
    }
    if (!t.ok()) return t.status();
    *request.mutable_spec() = MergeSpec(t->spec(), original.spec());
    if (request.controller_id().empty() && request.controller_type().empty()) {
      request.set_controller_type(t->preferred_controller_type());
    }
  }
  RETURN_IF_ERROR(ValidateCreateSessionRequest(request));
  // The session's class: the one it names, else the default (written into its spec, so a
  // reader sees which), and the class's value as of now.
  ResolvedPriority priority;
  if (classes_ != nullptr) {
    ASSIGN_OR_RETURN(priority, classes_->Resolve(request.spec().priority_class()));
  } else if (!request.spec().priority_class().empty()) {
    return absl::InvalidArgumentError("spec.priority_class: this API server has no priority classes");
  }
  request.mutable_spec()->set_priority_class(priority.class_name);
  const bool wait = request.wait_for_running();
  if (!request.request_id().empty()) {
    ASSIGN_OR_RETURN(auto existing, sessions_->FindByRequestId(caller.principal, request.request_id()));
    if (existing) return Retried(*existing, deadline, wait);
  }
  absl::StatusOr<v1::Session> placed = PlaceNew(caller, request, priority.value, deadline);
  if (placed.ok()) return placed;
  v1::CreateSessionRequest placement;  // What the dispatcher places it by, later.
  placement.set_controller_id(request.controller_id());
  placement.set_controller_type(request.controller_type());
  *placement.mutable_controller_selector() = request.controller_selector();
  const absl::Duration timeout =
      request.has_queue_timeout() ? absl::Seconds(request.queue_timeout().seconds()) : kDefaultQueueTimeout;
  // No room (not a quota, not an outage): sessions of lower priority may make room.
  if (preemptor_ != nullptr && placed.status().code() == absl::StatusCode::kResourceExhausted &&
      !IsQuotaRefusal(placed.status()) && request.spec().resources().gpus().count() > 0) {
    QueuedCreate create{caller.principal, request.request_id(), request.template_id(), request.spec(),
                        priority.value,   timeout,              ToJson(placement)};
    auto preempting = preemptor_->ForCreate(PlacementFor(request), create);
    if (preempting.ok() && preempting->has_value()) {
      NoteSession((*preempting)->id());
      if (!wait) return **preempting;
      return waiter_.Until(
          (*preempting)->id(),
          [](const v1::Session& s) {
            return s.phase() != v1::SESSION_PHASE_PENDING && s.phase() != v1::SESSION_PHASE_SCHEDULED;
          },
          std::min(absl::Now() + kPreemptionWait, deadline - absl::Seconds(1)));
    }
    if (preempting.status().code() == absl::StatusCode::kAlreadyExists) {
      ASSIGN_OR_RETURN(auto existing, sessions_->FindByRequestId(caller.principal, request.request_id()));
      if (existing) return Retried(*existing, deadline, wait);
    }
    if (IsQuotaRefusal(preempting.status())) return preempting.status();
    if (!preempting.ok()) spdlog::warn("create: preemption not tried to the end: {}", preempting.status().ToString());
  }
  // Did not fit now (the fleet's room, or the team's quota): queued, if the caller asked.
  const bool did_not_fit = IsQuotaRefusal(placed.status()) ||
                           placed.status().code() == absl::StatusCode::kResourceExhausted ||
                           placed.status().code() == absl::StatusCode::kUnavailable;
  if (!request.queue() || !did_not_fit) return placed;
  auto queued = sessions_->Enqueue(caller.principal, request.request_id(), request.template_id(), request.spec(),
                                   priority.value, timeout, ToJson(placement),
                                   absl::StrCat("queued: ", placed.status().message()));
  if (queued.status().code() == absl::StatusCode::kAlreadyExists) {
    ASSIGN_OR_RETURN(auto existing, sessions_->FindByRequestId(caller.principal, request.request_id()));
    if (existing) return Retried(*existing, deadline, wait);
  }
  if (queued.ok()) NoteSession(queued->id());
  return queued;
}

PlacementRequest PlacementFor(const v1::CreateSessionRequest& request) {
  PlacementRequest placement;
  placement.gpu_count = request.spec().resources().gpus().count();
  placement.min_gpu_memory_bytes = request.spec().resources().gpus().min_memory_bytes();
  placement.gpu_model = request.spec().resources().gpus().model();
  placement.controller_id = request.controller_id();
  placement.controller_type = request.controller_type();
  placement.selector_json = JsonStringMap(request.controller_selector());
  placement.skills_json = JsonStringArray({request.spec().skills().begin(), request.spec().skills().end()});
  return placement;
}

void SessionManager::StartQueued(const v1::Session& session, const ControllerTarget& target,
                                 std::vector<ControllerTarget> others) {
  StartLater(session, target, std::move(others), absl::InfiniteFuture());
}

absl::StatusOr<v1::Session> SessionManager::PlaceNew(const Caller& caller, const v1::CreateSessionRequest& request,
                                                     int32_t priority, absl::Time deadline) {
  const bool wait = request.wait_for_running();
  // How long placing takes (candidates, reservation, and when the caller waits for it, the
  // controller's answer), by outcome.
  ScopedLatency placing("gantry_placement_seconds", "Time to place a new session, by outcome",
                        {{"outcome", "refused"}});
  const PlacementRequest placement = PlacementFor(request);
  absl::StatusOr<std::vector<ControllerTarget>> candidates;
  {
    ScopedLatency selecting("gantry_controller_selection_seconds",
                            "Time to choose the controllers a new session is offered to (one query)", {});
    candidates = controllers_->Candidates(placement, max_attempts_);
  }
  if (!candidates.ok()) return candidates.status();

  // The first candidate with room gets the session: its GPUs reserved in PostgreSQL together
  // with inserting it, SCHEDULED. A reservation that no longer fits (taken by a concurrent
  // create since the candidates were listed) sends it to the next.
  PlacementRefusals refusals;
  for (size_t i = 0; i < candidates->size(); ++i) {
    const ControllerTarget& target = (*candidates)[i];
    NoteController(target.name);
    Reservation reservation{target.id, absl::StrCat("placing on controller ", target.name)};
    auto created = sessions_->Create(caller.principal, request.request_id(), request.template_id(),
                                     request.spec(), &reservation, priority);
    if (created.status().code() == absl::StatusCode::kAlreadyExists) {
      // A concurrent retry with the same request_id won the insert: return its session.
      ASSIGN_OR_RETURN(auto existing, sessions_->FindByRequestId(caller.principal, request.request_id()));
      if (existing) return Retried(*existing, deadline, wait);
    }
    // Over its team's quota: no other controller would take it either.
    if (IsQuotaRefusal(created.status())) return created.status();
    if (created.status().code() == absl::StatusCode::kResourceExhausted) {
      refusals.reasons.push_back(absl::StrCat(target.name, ": ", created.status().message()));
      refusals.all_unavailable = false;
      continue;
    }
    if (!created.ok()) return created.status();
    NoteSession(created->id());
    std::vector<ControllerTarget> others(candidates->begin() + static_cast<std::ptrdiff_t>(i) + 1, candidates->end());
    if (!wait) {
      // Durable, its GPUs reserved: acknowledged now, started on the pool's threads.
      placing.labels()[0].second = "acknowledged";
      return StartLater(*created, target, std::move(others), deadline);
    }
    auto placed = placer_.Place(*created, target, std::move(others), deadline, /*acknowledged=*/false, &refusals);
    if (refusals.taken_by_none && !placed.ok()) return NoCapacityError(request, refusals);
    if (placed.ok() && placed->phase() == v1::SESSION_PHASE_SCHEDULED) placed = AwaitStarted(placed->id(), deadline);
    if (placed.ok()) placing.labels()[0].second = placed->phase() == v1::SESSION_PHASE_SCHEDULED ? "deferred" : "placed";
    return placed;
  }
  return NoCapacityError(request, refusals);
}

v1::Session SessionManager::StartLater(const v1::Session& session, const ControllerTarget& target,
                                       std::vector<ControllerTarget> others, absl::Time caller_deadline) {
  const RequestIds* ids = CurrentRequestIds();
  const RequestIds carried = ids != nullptr ? *ids : RequestIds{};
  auto start = [this, session, target, others = std::move(others), carried](absl::Time deadline) {
    RequestIdScope scope(carried);
    ScopedLatency starting("gantry_session_start_seconds",
                           "Time from a create's acknowledgement to its controller taking it", {});
    PlacementRefusals refusals;
    auto placed = placer_.Place(session, target, others, deadline, /*acknowledged=*/true, &refusals);
    if (placed.ok()) return *std::move(placed);
    // Durable and SCHEDULED: the health check leader's sweep resumes or fails it.
    spdlog::warn("session {}: not started yet, left to the placement sweep: {}", session.id(),
                 placed.status().ToString());
    return session;
  };
  if (starting_.TrySubmit([start] { (void)start(absl::InfiniteFuture()); })) return session;
  // A full queue: this caller starts it, within its own deadline, which slows the burst down.
  return start(caller_deadline);
}

size_t SessionManager::StopStarting() { return starting_.Stop(); }

absl::StatusOr<v1::Session> SessionManager::Retried(const std::string& id, absl::Time deadline, bool wait) {
  ASSIGN_OR_RETURN(v1::Session session, sessions_->Get(id));
  // Acknowledged SCHEDULED is the answer a create without wait_for_running gets: the first
  // attempt's start, or the sweep, finishes it.
  if (session.phase() != v1::SESSION_PHASE_SCHEDULED || !wait) return session;
  // The first attempt may have died with its replica before the controller was asked, or the
  // controller's report be late: this retry asks again (the controller reports its state anew).
  // Any refusal is left to the first attempt (still alive, it is deciding) or to the health
  // check leader's sweep, so nothing is written here.
  if (!resumer_.Resume(session, deadline).ok()) return session;
  return AwaitStarted(id, deadline);
}

absl::StatusOr<v1::Session> SessionManager::AwaitStarted(const std::string& id, absl::Time deadline) {
  const absl::Time until = std::min(absl::Now() + kOutcomeWait, deadline - absl::Seconds(1));
  return waiter_.Until(id, [](const v1::Session& s) { return s.phase() != v1::SESSION_PHASE_SCHEDULED; }, until);
}

absl::StatusOr<v1::Session> SessionManager::Get(const Caller& caller, const std::string& id) {
  auto session = sessions_->Get(id);
  if (!session.ok()) return session.status();
  if (!Visible(caller, *session)) return NotFound(id);
  return session;
}

absl::StatusOr<v1::Session> SessionManager::Describe(const Caller& caller, const std::string& id) {
  ASSIGN_OR_RETURN(v1::Session session, Get(caller, id));
  RETURN_IF_ERROR(sessions_->AddQueuePositions({&session}));
  return session;
}

absl::StatusOr<v1::ListSessionsResponse> SessionManager::List(
    const Caller& caller, const v1::ListSessionsRequest& request) {
  RETURN_IF_ERROR(ValidateListSessionsRequest(request));
  SessionQuery query;
  query.owner = caller.is_admin() ? "" : caller.principal;
  query.phase = request.phase();
  query.controller_id = request.controller_id();
  query.labels_json = JsonStringMap(request.label_selector());
  query.page_token = request.page_token();
  query.page_size = request.page_size() == 0 ? 100 : request.page_size();
  ASSIGN_OR_RETURN(SessionPage page, sessions_->List(query));
  std::vector<v1::Session*> listed;
  for (v1::Session& session : page.sessions) listed.push_back(&session);
  RETURN_IF_ERROR(sessions_->AddQueuePositions(listed));
  v1::ListSessionsResponse response;
  for (auto& s : page.sessions) *response.add_sessions() = std::move(s);
  response.set_next_page_token(page.next_page_token);
  return response;
}

absl::StatusOr<v1::Session> SessionManager::Delete(const Caller& caller, const std::string& id) {
  ASSIGN_OR_RETURN(v1::Session session, Get(caller, id));
  if (IsTerminal(session.phase())) return session;
  if (session.phase() != v1::SESSION_PHASE_TERMINATING) {
    PhaseChange terminating;
    terminating.phase = v1::SESSION_PHASE_TERMINATING;
    terminating.message = absl::StrCat("deletion requested by ", caller.principal);
    auto updated = sessions_->Transition(id, terminating);
    if (updated.status().code() == absl::StatusCode::kFailedPrecondition) return sessions_->Get(id);
    if (!updated.ok()) return updated.status();
    session = *updated;
  }
  return StopOnController(sessions_, controllers_, client_, session, absl::StrCat("deleted by ", caller.principal));
}

absl::StatusOr<v1::Session> SessionManager::SetHibernated(const Caller& caller,
                                                          const std::string& id, bool hibernate) {
  ASSIGN_OR_RETURN(v1::Session session, Get(caller, id));
  const v1::SessionPhase target = hibernate ? v1::SESSION_PHASE_HIBERNATED : v1::SESSION_PHASE_RUNNING;
  if (session.phase() == target) return session;
  // Checked here first so that an illegal request never reaches the node.
  if (!IsLegalTransition(session.phase(), target) ||
      session.phase() != (hibernate ? v1::SESSION_PHASE_RUNNING : v1::SESSION_PHASE_HIBERNATED)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "session ", id, " is ", PhaseName(session.phase()), "; ",
        hibernate ? "only a RUNNING session can be hibernated" : "only a HIBERNATED session can be woken"));
  }
  ASSIGN_OR_RETURN(ControllerTarget target_controller, controllers_->Get(session.controller_id()));
  RETURN_IF_ERROR(client_->SetHibernated(target_controller.endpoint, id, hibernate).status());
  // Confirmed by the worker; stored when the controller's report of it arrives.
  return waiter_.Until(
      id, [target](const v1::Session& s) { return s.phase() == target || IsTerminal(s.phase()); },
      absl::Now() + kOutcomeWait);
}

absl::StatusOr<v1::SessionMetrics> SessionManager::Metrics(const Caller& caller,
                                                           const std::string& id) {
  ASSIGN_OR_RETURN(v1::Session session, Get(caller, id));
  if (session.phase() != v1::SESSION_PHASE_RUNNING && session.phase() != v1::SESSION_PHASE_HIBERNATED) {
    return absl::FailedPreconditionError(absl::StrCat("session ", id, " is ", PhaseName(session.phase()),
                                                      "; metrics exist only while it runs"));
  }
  ASSIGN_OR_RETURN(ControllerTarget target, controllers_->Get(session.controller_id()));
  ASSIGN_OR_RETURN(auto upstream, client_->GetSessionMetrics(target.endpoint, id));
  v1::SessionMetrics metrics;
  metrics.set_session_id(id);
  *metrics.mutable_usage() = upstream.current_usage();
  *metrics.mutable_gpus() = upstream.gpus();
  *metrics.mutable_custom_metrics() = upstream.custom_metrics();
  return metrics;
}

absl::StatusOr<LogUpstream> SessionManager::LogUpstreamOf(const Caller& caller,
                                                         const v1::StreamLogsRequest& request) {
  if (request.tail_lines() < 0 || request.tail_lines() > 1000000) {
    return absl::InvalidArgumentError("tail_lines: must be 0..1000000 (0 = from the start)");
  }
  ASSIGN_OR_RETURN(v1::Session session, Get(caller, request.id()));
  if (session.controller_id().empty() || session.worker_id().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "session ", request.id(), " is ", PhaseName(session.phase()),
        " and never ran on a worker: it has no log"));
  }
  LogUpstream upstream;
  ASSIGN_OR_RETURN(upstream.controller, controllers_->Get(session.controller_id()));
  upstream.request.set_session_id(session.id());
  upstream.request.set_worker_id(session.worker_id());
  upstream.request.set_tail_lines(request.tail_lines());
  // Following a finished session would only wait for lines that never come.
  upstream.request.set_follow(request.follow() && !IsTerminal(session.phase()));
  return upstream;
}

}  // namespace gantry::api
