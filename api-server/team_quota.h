// What a team's quota allows, what its live sessions hold against it, and the check each create
// makes: pure, so the rules are unit-tested apart from the transaction that applies them
// (SessionStore reads a team's quota under the team's lock, checks every create of a batch
// against it and counts each one it admits before the next).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gantry/v1/admin_service.pb.h"

namespace gantry::api {

// 0: no limit.
struct QuotaLimits {
  int max_gpus = 0;
  int max_sessions = 0;
  std::map<std::string, int> max_gpus_by_model;  // Key: a case-insensitive part of a model's name.
  int64_t max_gpu_memory_bytes = 0;
  int weight = 1;  // In the queue's fair share (not a limit).
};

struct QuotaUse {
  int gpus = 0;
  int sessions = 0;
  std::map<std::string, int> gpus_by_model;  // By the limits' keys.
  int64_t gpu_memory_bytes = 0;
};

struct TeamQuota {
  std::string team;
  QuotaLimits limits;
  QuotaUse use;
  absl::Time updated;
};

// What one session holds against its team's quota while it lives.
struct QuotaCharge {
  int gpus = 0;
  // The model(s) its GPUs are charged as, ", "-joined where its controller has several and it
  // asked for none: then it counts against the limit of each model it may be.
  std::string gpu_model;
  int64_t gpu_memory_bytes = 0;
};

// A session of `gpus` GPUs that asked for `asked_model` (a part of a name, or "") placed on a
// controller with GPUs of `controller_models`, the largest of `max_gpu_memory_bytes` each.
QuotaCharge ChargeOn(int gpus, const std::string& asked_model, const std::vector<std::string>& controller_models,
                     int64_t max_gpu_memory_bytes);

// Whether `gpu_model` (a charge's) counts against the limit keyed `key`.
bool ModelMatches(const std::string& gpu_model, const std::string& key);

// OK if `charge` fits in what `quota` has left; else RESOURCE_EXHAUSTED naming the team, the
// limit, the team's use and what the session needs (marked as a quota's: IsQuotaRefusal).
absl::Status CheckQuota(const TeamQuota& quota, const QuotaCharge& charge);
// Counts an admitted `charge` in `quota`'s use.
void AddCharge(TeamQuota* quota, const QuotaCharge& charge);
// A refusal of CheckQuota's (not a controller without room: another controller will not help).
bool IsQuotaRefusal(const absl::Status& status);

// The key of the team's lock (lock_team_for_quota.sql): taken in ascending order of it.
int32_t TeamLockKey(const std::string& team);

// A team name an admin may give: 1..63 of [a-z0-9._-], or a principal ("user/alice") for its
// team of one. INVALID_ARGUMENT naming `field` otherwise.
absl::Status ValidateTeamName(const std::string& team, const char* field);

v1::Quota QuotaToProto(const TeamQuota& quota);

}  // namespace gantry::api
