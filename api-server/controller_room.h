// A controller's room for reservations, read under its reservation lock: what SessionStore's
// creates and moves and PreemptionStore's preemptions check GPUs against, one way.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <pqxx/transaction>

#include "absl/status/status.h"
#include "api-server/team_quota.h"

namespace gantry::api {

// A controller's GPUs and how many are not reserved, with what a session placed there is
// charged as against a quota.
struct ControllerRoom {
  int total = 0;
  int unreserved = 0;
  std::vector<std::string> gpu_models;
  int64_t max_gpu_memory_bytes = 0;

  QuotaCharge ChargeFor(int gpus, const std::string& asked_model) const {
    return ChargeOn(gpus, asked_model, gpu_models, max_gpu_memory_bytes);
  }
};

// Takes `controller_id`'s reservation lock until `tx` ends and reads its room; none when it may
// no longer take sessions (not healthy, or cordoned).
std::optional<ControllerRoom> LockRoom(pqxx::work& tx, const std::string& controller_id);

// Why `gpus` GPUs do not fit on `controller_id` (room: none when it may no longer be chosen).
absl::Status NoRoom(const std::string& controller_id, const std::optional<ControllerRoom>& room, int gpus);

}  // namespace gantry::api
