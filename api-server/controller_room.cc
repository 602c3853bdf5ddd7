#include "api-server/controller_room.h"

#include <pqxx/result>

#include "absl/strings/str_cat.h"
#include "api-server/sql_queries.h"
#include "common/json_util.h"
#include "common/pg_prepared.h"

namespace gantry::api {

std::optional<ControllerRoom> LockRoom(pqxx::work& tx, const std::string& controller_id) {
  ExecPrepared(tx, sql::kLockControllerForReservation, controller_id);
  // A statement of its own, after the lock: its snapshot has the reservations committed by
  // whoever held the lock before.
  pqxx::result r = ExecPrepared(tx, sql::kSelectControllerRoom, controller_id);
  if (r.empty()) return std::nullopt;
  const int total = r[0][0].as<int>();
  auto models = ParseJsonStringArray(r[0][2].as<std::string>());
  return ControllerRoom{total, total - r[0][1].as<int>(),
                        models.ok() ? *std::move(models) : std::vector<std::string>{}, r[0][3].as<int64_t>()};
}

absl::Status NoRoom(const std::string& controller_id, const std::optional<ControllerRoom>& room, int gpus) {
  if (!room) {
    return absl::ResourceExhaustedError(absl::StrCat("controller ", controller_id, " is no longer healthy and uncordoned"));
  }
  return absl::ResourceExhaustedError(absl::StrCat("controller ", controller_id, " has ", room->unreserved, " of its ",
                                                   room->total, " GPU(s) unreserved; the session needs ", gpus));
}

}  // namespace gantry::api
