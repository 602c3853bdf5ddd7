#include "api-server/session_store.h"

#include <map>

#include <pqxx/connection>
#include <pqxx/nontransaction>
#include <pqxx/result>
#include <pqxx/transaction>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "api-server/controller_room.h"
#include "api-server/session_rows.h"
#include "api-server/sql_queries.h"
#include "api-server/team_charges.h"
#include "api-server/team_quota.h"
#include "common/json_util.h"
#include "common/pg_pool.h"
#include "common/pg_prepared.h"
#include "common/proto_time.h"
#include "common/session_phase.h"
#include "common/status.h"

namespace gantry::api {
namespace {

constexpr int kMaxOptimisticRetries = 8;

// A session that exists, moving onto (or placed on) controller `to`: its recorded team and what
// it holds now, what it would hold on `to`, with the controller's room and the team's quota
// read under the locks a reservation takes. `gone`: the answer when the session does not exist.
struct OnController {
  TeamCharges teams;
  QuotaCharge before;
  QuotaCharge charge;
};

absl::StatusOr<OnController> LockForSession(pqxx::work& tx, const v1::Session& session, const std::string& to,
                                            absl::Status gone) {
  const int gpus = session.spec().resources().gpus().count();
  // Charged to the team it was created in, as its own row says.
  pqxx::result held = ExecPrepared(tx, sql::kSelectSessionCharge, session.id());
  if (held.empty()) return gone;
  OnController out;
  out.teams.Assume(session.owner(), held[0][0].as<std::string>(), held[0][3].as<bool>());
  out.before = {gpus, held[0][1].as<std::string>(), held[0][2].as<int64_t>()};
  std::optional<ControllerRoom> room = LockRoom(tx, to);
  // A queued session nominated to `to` (its preemption made room there) is counted in the
  // room's reservations already.
  if (room && held[0][4].as<std::string>() == to) room->unreserved += gpus;
  if (!room || (gpus > 0 && room->unreserved < gpus)) return NoRoom(to, room, gpus);
  out.teams.LockAndRead(tx);
  out.charge = room->ChargeFor(gpus, session.spec().resources().gpus().model());
  return out;
}

}  // namespace

struct SessionStore::PendingCreate {
  std::string controller_id, owner, request_id, template_id, spec_json, labels_json, message;
  std::string gpu_model;  // Asked for: a part of a name, or "".
  int gpus = 0;
  int32_t priority = 0;
  absl::StatusOr<v1::Session> out = absl::InternalError("not written");
};

SessionStore::SessionStore(PgPool* pool)
    : pool_(pool),
      reservations_([this](const std::vector<PendingCreate*>& batch) { WriteReservations(batch); },
                    kMaxReservationBatch) {}

size_t SessionStore::reservations_queued() const { return reservations_.queued(); }

absl::StatusOr<std::optional<std::string>> SessionStore::FindByRequestId(
    const std::string& owner, const std::string& request_id) {
  std::optional<std::string> found;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r = ExecPrepared(tx, sql::kSelectSessionByRequestId, owner, request_id);
    if (!r.empty()) found = r[0][0].as<std::string>();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return found;
}

absl::StatusOr<v1::Session> SessionStore::Create(const std::string& owner,
                                                 const std::string& request_id,
                                                 const std::string& template_id,
                                                 const v1::SessionSpec& spec,
                                                 const Reservation* reservation, int32_t priority) {
  const int gpus = spec.resources().gpus().count();
  if (reservation != nullptr && gpus > 0) {
    PendingCreate mine;
    mine.controller_id = reservation->controller_id;
    mine.owner = owner;
    mine.request_id = request_id;
    mine.template_id = template_id;
    mine.spec_json = ToJson(spec);
    mine.labels_json = JsonStringMap(spec.labels());
    mine.message = reservation->message;
    mine.gpu_model = spec.resources().gpus().model();
    mine.gpus = gpus;
    mine.priority = priority;
    if (!reservations_.Submit(reservation->controller_id, &mine, DbDeadlineScope::Current())) {
      return absl::UnavailableError(absl::StrCat(
          "the database did not answer in time: the create waited its whole deadline for its turn to reserve GPUs "
          "on controller ", reservation->controller_id, "; nothing was written"));
    }
    return std::move(mine.out);
  }
  absl::StatusOr<v1::Session> out = absl::InternalError("not run");
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    // No GPUs to reserve: its place among its team's sessions is all it is charged.
    TeamCharges teams;
    teams.Resolve(tx, {owner});
    teams.LockAndRead(tx);
    if (absl::Status fits = teams.Admit(owner, QuotaCharge{}); !fits.ok()) {
      out = fits;
      return absl::OkStatus();  // Rolled back: nothing written.
    }
    const std::string pending(PhaseName(v1::SESSION_PHASE_PENDING));
    const std::string scheduled(PhaseName(v1::SESSION_PHASE_SCHEDULED));
    const std::string& phase = reservation != nullptr ? scheduled : pending;
    const std::string controller_id = reservation != nullptr ? reservation->controller_id : "";
    const std::string message = reservation != nullptr ? reservation->message : "";
    pqxx::result r = ExecPrepared(tx, sql::kInsertSession, owner, request_id, template_id,
                                    ToJson(spec), JsonStringMap(spec.labels()), gpus, phase,
                                    controller_id, message, teams.TeamOf(owner), std::string(), int64_t{0}, priority);
    std::string id = r[0][0].as<std::string>();
    ExecPrepared(tx, sql::kInsertSessionEvent, id, std::string(), pending, std::string("created"));
    if (reservation != nullptr) {
      ExecPrepared(tx, sql::kInsertSessionEvent, id, pending, scheduled, message);
      ExecPrepared(tx, sql::kNoteControllerSelected, controller_id, 1);
    }
    out = ReadSession(tx, id);
    tx.commit();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

void SessionStore::WriteReservations(const std::vector<PendingCreate*>& batch) {
  const std::string& controller_id = batch.front()->controller_id;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    int placed = 0;
    {
      pqxx::work tx(c);
      TeamCharges teams;
      std::vector<std::string> owners;
      for (const PendingCreate* p : batch) owners.push_back(p->owner);
      teams.Resolve(tx, owners);
      std::optional<ControllerRoom> room = LockRoom(tx, controller_id);
      if (!room) {
        for (PendingCreate* p : batch) p->out = NoRoom(controller_id, room, p->gpus);
        return absl::OkStatus();  // Rolled back: nothing written.
      }
      teams.LockAndRead(tx);
      for (PendingCreate* p : batch) {
        if (room->unreserved < p->gpus) {
          p->out = NoRoom(controller_id, room, p->gpus);
          continue;
        }
        const QuotaCharge charge = room->ChargeFor(p->gpus, p->gpu_model);
        if (absl::Status fits = teams.Admit(p->owner, charge); !fits.ok()) {
          p->out = fits;
          continue;
        }
        pqxx::result r = ExecPrepared(tx, sql::kInsertReservedSession, p->owner, p->request_id,
                                        p->template_id, p->spec_json, p->labels_json, p->gpus, controller_id,
                                        p->message, teams.TeamOf(p->owner), charge.gpu_model,
                                        charge.gpu_memory_bytes, p->priority);
        if (r.empty()) {
          p->out = absl::AlreadyExistsError(
              absl::StrCat("request_id \"", p->request_id, "\" was used already by ", p->owner));
          continue;
        }
        p->out = RowToSession(r[0]);
        room->unreserved -= p->gpus;
        ++placed;
      }
      if (placed > 0) ExecPrepared(tx, sql::kNoteControllerSelected, controller_id, placed);
      tx.commit();
    }
    return absl::OkStatus();
  });
  if (!s.ok()) {
    for (PendingCreate* p : batch) p->out = s;  // Rolled back, or in doubt: the caller retries by request_id.
  }
}

absl::StatusOr<v1::Session> SessionStore::MoveReservation(const v1::Session& session,
                                                          const std::string& from_controller_id,
                                                          const Reservation& reservation) {
  const std::string& to = reservation.controller_id;
  absl::StatusOr<v1::Session> out = absl::InternalError("not run");
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    absl::StatusOr<OnController> on = LockForSession(
        tx, session, to, absl::NotFoundError(absl::StrCat("session ", session.id(), " not found")));
    if (!on.ok()) {
      out = on.status();
      return absl::OkStatus();  // Rolled back: nothing written.
    }
    const QuotaCharge& charge = on->charge;
    if (absl::Status fits = on->teams.Recharge(session.owner(), on->before, charge); !fits.ok()) {
      out = fits;
      return absl::OkStatus();
    }
    pqxx::result moved = ExecPrepared(tx, sql::kMoveReservation, session.id(), from_controller_id, to,
                                        reservation.message, charge.gpu_model, charge.gpu_memory_bytes);
    if (moved.empty()) {
      out = absl::FailedPreconditionError(absl::StrCat("session ", session.id(),
                                                       " is no longer SCHEDULED on controller ", from_controller_id));
      return absl::OkStatus();
    }
    ExecPrepared(tx, sql::kNoteControllerSelected, to, 1);
    out = ReadSession(tx, session.id());
    tx.commit();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<v1::Session> SessionStore::Enqueue(const std::string& owner, const std::string& request_id,
                                                  const std::string& template_id, const v1::SessionSpec& spec,
                                                  int32_t priority, absl::Duration queue_timeout,
                                                  const std::string& placement_json, const std::string& message) {
  absl::StatusOr<v1::Session> out = absl::InternalError("not run");
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    TeamCharges teams;  // Charged to its owner's team now; it holds nothing until placed.
    teams.Resolve(tx, {owner});
    pqxx::result r = ExecPrepared(tx, sql::kInsertQueuedSession, owner, request_id, template_id, ToJson(spec),
                                  JsonStringMap(spec.labels()), spec.resources().gpus().count(), teams.TeamOf(owner),
                                  priority, absl::ToDoubleSeconds(queue_timeout), placement_json, message,
                                  std::string());
    if (r.empty()) {
      out = absl::AlreadyExistsError(absl::StrCat("request_id \"", request_id, "\" was used already by ", owner));
      return absl::OkStatus();
    }
    out = RowToSession(r[0]);
    tx.commit();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<SessionStore::QueuedSession>> SessionStore::Queued(int limit,
                                                                            absl::Duration fair_share_window) {
  std::vector<QueuedSession> out;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    for (const auto& row : ExecPrepared(tx, sql::kSelectQueuedSessions, limit,
                                        absl::ToDoubleSeconds(fair_share_window))) {
      ASSIGN_OR_RETURN(v1::Session session, RowToSession(row));
      out.push_back({std::move(session), row[17].as<std::string>(), row[18].as<int32_t>(), row[19].as<std::string>()});
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<v1::Session> SessionStore::ScheduleQueued(const v1::Session& session, const Reservation& reservation) {
  const std::string& to = reservation.controller_id;
  absl::StatusOr<v1::Session> out = absl::InternalError("not run");
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    absl::StatusOr<OnController> on = LockForSession(
        tx, session, to, absl::FailedPreconditionError(absl::StrCat("session ", session.id(), " is no longer queued")));
    if (!on.ok()) {
      out = on.status();
      return absl::OkStatus();  // Rolled back: nothing written.
    }
    const QuotaCharge& charge = on->charge;
    if (absl::Status fits = on->teams.Admit(session.owner(), charge); !fits.ok()) {
      out = fits;
      return absl::OkStatus();
    }
    pqxx::result r = ExecPrepared(tx, sql::kScheduleQueuedSession, session.id(), to, reservation.message,
                                  charge.gpu_model, charge.gpu_memory_bytes);
    if (r.empty()) {
      out = absl::FailedPreconditionError(absl::StrCat("session ", session.id(), " is no longer queued"));
      return absl::OkStatus();
    }
    out = RowToSession(r[0]);
    tx.commit();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<std::pair<std::string, absl::Duration>>> SessionStore::ExpiredQueued(int limit) {
  std::vector<std::pair<std::string, absl::Duration>> out;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    for (const auto& row : ExecPrepared(tx, sql::kSelectExpiredQueuedSessions, limit)) {
      out.emplace_back(row[0].as<std::string>(), absl::Seconds(row[1].as<double>()));
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::Status SessionStore::Discard(const std::string& id) {
  return pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    ExecPrepared(tx, sql::kDeleteUnacknowledgedSession, id);
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::Session> SessionStore::Get(const std::string& id) {
  if (!IsUuid(id)) return absl::NotFoundError(absl::StrCat("session \"", id, "\" not found"));
  absl::StatusOr<v1::Session> out = absl::InternalError("not run");
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    out = ReadSession(tx, id);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::Status SessionStore::AddQueuePositions(const std::vector<v1::Session*>& sessions) {
  std::vector<std::string> ids;
  std::map<std::string, v1::Session*> by_id;
  for (v1::Session* session : sessions) {
    if (session->phase() != v1::SESSION_PHASE_PENDING) continue;
    ids.push_back(session->id());
    by_id[session->id()] = session;
  }
  if (ids.empty()) return absl::OkStatus();
  return pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    for (const auto& row : ExecPrepared(tx, sql::kSelectQueuePositions, JsonStringArray(ids),
                                        absl::ToDoubleSeconds(kFairShareWindow))) {
      v1::Condition* position = by_id[row[0].as<std::string>()]->add_conditions();
      position->set_type("QueuePosition");
      position->set_status("True");
      position->set_reason("Queued");
      position->set_message(absl::StrCat(row[1].as<int64_t>(), " of ", row[2].as<int64_t>()));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::Session> SessionStore::Transition(const std::string& id,
                                                     const PhaseChange& change) {
  if (!IsUuid(id)) return absl::NotFoundError(absl::StrCat("session \"", id, "\" not found"));
  for (int attempt = 0; attempt < kMaxOptimisticRetries; ++attempt) {
    absl::StatusOr<v1::Session> out = absl::InternalError("not run");
    bool conflict = false;
    absl::Status s = pool_->Run([&](pqxx::connection& c) {
      pqxx::work tx(c);
      auto current = ReadSession(tx, id);
      if (!current.ok()) {
        out = current.status();
        return absl::OkStatus();
      }
      if (!IsLegalTransition(current->phase(), change.phase) ||
          (change.only_from && current->phase() != *change.only_from)) {
        out = absl::FailedPreconditionError(
            absl::StrCat("session ", id, " is ", PhaseName(current->phase()), " and cannot become ",
                         PhaseName(change.phase)));
        return absl::OkStatus();
      }
      auto written = WritePhaseChange(tx, *current, change);
      if (!written.ok()) {
        out = written.status();
        return absl::OkStatus();
      }
      if (!*written) {
        conflict = true;  // Someone else changed it since we read it: re-read and re-check.
        return absl::OkStatus();
      }
      out = std::move(**written);
      tx.commit();
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    if (!conflict) return out;
  }
  return absl::AbortedError(
      absl::StrCat("session ", id, " is changing too fast to update; retry"));
}

absl::StatusOr<SessionPage> SessionStore::List(const SessionQuery& query) {
  std::string cursor_time, cursor_id;
  if (!query.page_token.empty()) {
    std::vector<std::string> parts = absl::StrSplit(query.page_token, '|');
    if (parts.size() != 2 || !IsUuid(parts[1]) || parts[0].empty() || parts[0].size() > 64) {
      return absl::InvalidArgumentError("page_token: malformed; pass next_page_token unchanged");
    }
    cursor_time = parts[0];
    cursor_id = parts[1];
  }
  std::string phase = query.phase == v1::SESSION_PHASE_UNSPECIFIED
                          ? std::string()
                          : std::string(PhaseName(query.phase));
  SessionPage page;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    // One extra row tells whether another page exists.
    pqxx::result r = ExecPrepared(tx, sql::kListSessions, query.owner, phase,
                                    query.controller_id, query.labels_json, cursor_time, cursor_id,
                                    query.page_size + 1);
    for (int i = 0; i < static_cast<int>(r.size()) && i < query.page_size; ++i) {
      auto session = RowToSession(r[i]);
      if (!session.ok()) return session.status();
      page.sessions.push_back(std::move(*session));
    }
    if (static_cast<int>(r.size()) > query.page_size) {
      const auto& last = r[query.page_size - 1];
      page.next_page_token = absl::StrCat(last[17].as<std::string>(), "|", last[0].as<std::string>());
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return page;
}

}  // namespace gantry::api
