// Sessions and their event history in PostgreSQL. Every phase change goes through
// Transition, which checks the state machine, writes with optimistic concurrency on `version`
// and appends to session_events in the same transaction.
//
// Thread-safe (each call takes its own pooled connection). Blocking: call from handler threads
// of the synchronous gRPC server, never from a callback reactor.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "api-server/request_validation.h"  // IsUuid
#include "common/group_commit.h"
#include "gantry/v1/session_service.pb.h"

namespace gantry {
class PgPool;
}

namespace gantry::api {

struct PhaseChange {
  v1::SessionPhase phase = v1::SESSION_PHASE_UNSPECIFIED;
  std::string message;
  // Placement fields: empty leaves the stored value unchanged.
  std::string controller_id;
  std::string worker_id;
  std::string node_id;
  std::optional<std::vector<std::string>> gpu_uuids;
  std::string url;
  // Set: the change applies only while the session is in this phase (FAILED_PRECONDITION if not).
  std::optional<v1::SessionPhase> only_from;
};

// The window over which a team's recent GPU-seconds order its queued sessions among equals
// (select_queued_sessions.sql; the QueuePosition condition uses the same).
inline constexpr absl::Duration kFairShareWindow = absl::Hours(1);

struct Reservation {
  std::string controller_id;
  std::string message;  // For the SCHEDULED event, e.g. which controller and why.
};

struct SessionQuery {
  std::string owner;  // "" = every owner (admins).
  v1::SessionPhase phase = v1::SESSION_PHASE_UNSPECIFIED;
  std::string controller_id;
  std::string labels_json = "{}";
  std::string page_token;
  int page_size = 100;
};

struct SessionPage {
  std::vector<v1::Session> sessions;
  std::string next_page_token;
};

class SessionStore {
 public:
  explicit SessionStore(PgPool* pool);

  // The id of the session `owner` created with `request_id`, if any.
  absl::StatusOr<std::optional<std::string>> FindByRequestId(const std::string& owner,
                                                             const std::string& request_id);

  // Inserts a session and its first events. ALREADY_EXISTS if (owner, request_id) is taken.
  // Without a reservation the session is PENDING. With one, it is SCHEDULED on that controller
  // and holds its GPUs there from this moment, checked against the controller's total under
  // the controller's reservation lock, so that concurrent creates through any replica never
  // promise one GPU twice: RESOURCE_EXHAUSTED, and nothing written, when they are no longer
  // free or the controller can no longer be chosen. Creates that reserve GPUs on one controller
  // while another batch for it is being written are written together next (GroupCommit): one
  // lock turn and one commit for up to kMaxReservationBatch of them, first come first served
  // for the room left. Bounded by this thread's DbDeadlineScope: still queued at that deadline,
  // the create is UNAVAILABLE with nothing written.
  // `priority`: the value of the spec's priority class (PriorityClassStore::Resolve).
  absl::StatusOr<v1::Session> Create(const std::string& owner, const std::string& request_id,
                                     const std::string& template_id, const v1::SessionSpec& spec,
                                     const Reservation* reservation = nullptr, int32_t priority = 0);

  // Moves a SCHEDULED session's reservation from `from_controller_id` (which refused to start
  // it) to reservation->controller_id, checked against that controller's room under its
  // reservation lock as Create does. RESOURCE_EXHAUSTED, nothing written, when it has no room
  // or can no longer be chosen; FAILED_PRECONDITION when the session is no longer SCHEDULED on
  // `from_controller_id` (it moved on meanwhile).
  absl::StatusOr<v1::Session> MoveReservation(const v1::Session& session, const std::string& from_controller_id,
                                              const Reservation& reservation);

  // A create that did not fit now, stored PENDING and holding nothing until `queue_timeout`
  // passes or QueueDispatcher places it; `placement_json`: the placement it asked for (a
  // CreateSessionRequest with only its placement fields, as JSON); `message` says why it
  // queued. ALREADY_EXISTS for a request_id its owner has used.
  absl::StatusOr<v1::Session> Enqueue(const std::string& owner, const std::string& request_id,
                                      const std::string& template_id, const v1::SessionSpec& spec, int32_t priority,
                                      absl::Duration queue_timeout, const std::string& placement_json,
                                      const std::string& message);
  struct QueuedSession {
    v1::Session session;
    std::string placement_json;
    int32_t priority = 0;
    std::string nominated_controller_id;  // Where its preemption is making room, or "".
  };
  // Queued sessions in the order they are offered room (select_queued_sessions.sql), at most
  // `limit`.
  absl::StatusOr<std::vector<QueuedSession>> Queued(int limit, absl::Duration fair_share_window);
  // Places a queued session on reservation.controller_id if that controller's room and the
  // session's team's quota allow, as a create's reservation does: SCHEDULED there.
  // RESOURCE_EXHAUSTED, nothing written, when they do not; FAILED_PRECONDITION when it is no
  // longer queued (deleted, expired, placed by another replica).
  absl::StatusOr<v1::Session> ScheduleQueued(const v1::Session& session, const Reservation& reservation);
  // Queued sessions past their queue_timeout, oldest first: each id and how long it waited.
  absl::StatusOr<std::vector<std::pair<std::string, absl::Duration>>> ExpiredQueued(int limit);

  // Deletes a SCHEDULED session that no client was told about (every controller refused it),
  // with its events, releasing its reservation.
  absl::Status Discard(const std::string& id);
  // NOT_FOUND if there is no such session.
  absl::StatusOr<v1::Session> Get(const std::string& id);
  // Adds to each queued session among `sessions` its "QueuePosition" condition ("3 of 12", in
  // the queue's order): one query for all, none when none is PENDING. For what clients read
  // (GetSession, ListSessions), not for the server's own reads: it orders the whole queue.
  absl::Status AddQueuePositions(const std::vector<v1::Session*>& sessions);

  // Moves the session to change.phase. FAILED_PRECONDITION if the state machine forbids the
  // move from the phase it is in; concurrent writers are resolved by re-reading and re-checking.
  absl::StatusOr<v1::Session> Transition(const std::string& id, const PhaseChange& change);

  absl::StatusOr<SessionPage> List(const SessionQuery& query);

  // Reserving creates waiting for a batch (not those being written).
  size_t reservations_queued() const;

  static constexpr size_t kMaxReservationBatch = 64;

 private:
  struct PendingCreate;
  // Inserts `batch` (creates reserving GPUs on one controller) in one transaction under the
  // controller's reservation lock, and sets each one's outcome.
  void WriteReservations(const std::vector<PendingCreate*>& batch);

  PgPool* pool_;
  GroupCommit<PendingCreate> reservations_;  // Keyed by controller id.
};

}  // namespace gantry::api
