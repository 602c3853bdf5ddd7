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

// True for the canonical textual form of a UUID.
bool IsUuid(absl::string_view s);

class SessionStore {
 public:
  explicit SessionStore(PgPool* pool) : pool_(pool) {}

  // The id of the session `owner` created with `request_id`, if any.
  absl::StatusOr<std::optional<std::string>> FindByRequestId(const std::string& owner,
                                                             const std::string& request_id);

  // Inserts a PENDING session and its first event. ALREADY_EXISTS if (owner, request_id) is taken.
  absl::StatusOr<v1::Session> Create(const std::string& owner, const std::string& request_id,
                                     const std::string& template_id, const v1::SessionSpec& spec);

  // NOT_FOUND if there is no such session.
  absl::StatusOr<v1::Session> Get(const std::string& id);

  // Moves the session to change.phase. FAILED_PRECONDITION if the state machine forbids the
  // move from the phase it is in; concurrent writers are resolved by re-reading and re-checking.
  absl::StatusOr<v1::Session> Transition(const std::string& id, const PhaseChange& change);

  absl::StatusOr<SessionPage> List(const SessionQuery& query);

 private:
  PgPool* pool_;
};

}  // namespace gantry::api
