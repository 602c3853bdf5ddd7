#include "api-server/team_quota.h"

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/identity.h"
#include "common/proto_time.h"
#include "common/tokens.h"

namespace gantry::api {
namespace {

constexpr char kQuotaRefusal[] = "gantry.dev/quota-refusal";

absl::Status Refuse(const TeamQuota& quota, const std::string& limit, int64_t max, int64_t used, int64_t needs) {
  absl::Status status = absl::ResourceExhaustedError(
      absl::StrCat("quota of team \"", quota.team, "\": ", limit, " is ", max, " and the team holds ", used,
                   "; this session needs ", needs, " more (SetQuota raises it; ending sessions frees it)"));
  status.SetPayload(kQuotaRefusal, absl::Cord("1"));
  return status;
}

}  // namespace

bool ModelMatches(const std::string& gpu_model, const std::string& key) {
  // As placement matches a model: strpos(lower(model), lower(key)) > 0.
  return absl::StrContains(absl::AsciiStrToLower(gpu_model), absl::AsciiStrToLower(key));
}

QuotaCharge ChargeOn(int gpus, const std::string& asked_model, const std::vector<std::string>& controller_models,
                     int64_t max_gpu_memory_bytes) {
  QuotaCharge charge;
  charge.gpus = gpus;
  if (gpus <= 0) return charge;
  charge.gpu_memory_bytes = static_cast<int64_t>(gpus) * max_gpu_memory_bytes;
  std::vector<std::string> models;
  for (const std::string& model : controller_models) {
    // Placement gives a session that asked for a model GPUs of a model matching it.
    if (asked_model.empty() || ModelMatches(model, asked_model)) models.push_back(model);
  }
  charge.gpu_model = models.empty() ? asked_model : absl::StrJoin(models, ", ");
  return charge;
}

absl::Status CheckQuota(const TeamQuota& quota, const QuotaCharge& charge) {
  const QuotaLimits& limits = quota.limits;
  const QuotaUse& use = quota.use;
  if (limits.max_sessions > 0 && use.sessions + 1 > limits.max_sessions) {
    return Refuse(quota, "max_sessions", limits.max_sessions, use.sessions, 1);
  }
  if (charge.gpus <= 0) return absl::OkStatus();
  if (limits.max_gpus > 0 && use.gpus + charge.gpus > limits.max_gpus) {
    return Refuse(quota, "max_gpus", limits.max_gpus, use.gpus, charge.gpus);
  }
  if (limits.max_gpu_memory_bytes > 0 && use.gpu_memory_bytes + charge.gpu_memory_bytes > limits.max_gpu_memory_bytes) {
    return Refuse(quota, "max_gpu_memory_bytes", limits.max_gpu_memory_bytes, use.gpu_memory_bytes,
                  charge.gpu_memory_bytes);
  }
  for (const auto& [key, max] : limits.max_gpus_by_model) {
    if (max <= 0 || !ModelMatches(charge.gpu_model, key)) continue;
    auto used = use.gpus_by_model.find(key);
    const int held = used == use.gpus_by_model.end() ? 0 : used->second;
    if (held + charge.gpus > max) {
      return Refuse(quota, absl::StrCat("max_gpus_by_model[\"", key, "\"]"), max, held, charge.gpus);
    }
  }
  return absl::OkStatus();
}

void AddCharge(TeamQuota* quota, const QuotaCharge& charge) {
  QuotaUse& use = quota->use;
  ++use.sessions;
  use.gpus += charge.gpus;
  use.gpu_memory_bytes += charge.gpu_memory_bytes;
  if (charge.gpus <= 0) return;
  for (const auto& [key, max] : quota->limits.max_gpus_by_model) {
    if (ModelMatches(charge.gpu_model, key)) use.gpus_by_model[key] += charge.gpus;
  }
}

bool IsQuotaRefusal(const absl::Status& status) { return status.GetPayload(kQuotaRefusal).has_value(); }

int32_t TeamLockKey(const std::string& team) {
  const std::string digest = Sha256Hex(team);
  uint32_t key = 0;
  for (int i = 0; i < 8; ++i) {  // The first 4 bytes, from hex.
    const char c = digest[static_cast<size_t>(i)];
    key = (key << 4) | static_cast<uint32_t>(absl::ascii_isdigit(c) ? c - '0' : c - 'a' + 10);
  }
  int32_t out;
  std::memcpy(&out, &key, sizeof(out));
  return out;
}

absl::Status ValidateTeamName(const std::string& team, const char* field) {
  if (IsValidName(team)) return absl::OkStatus();
  std::vector<std::string> parts = absl::StrSplit(team, absl::MaxSplits('/', 1));
  if (parts.size() == 2 && (parts[0] == "user" || parts[0] == "admin") &&
      IsValidName(parts[1])) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      field, ": a team is 1..63 of [a-z0-9._-] starting with a letter or digit (e.g. \"ml-research\"), or a "
             "principal (\"user/alice\") for its team of one"));
}

v1::Quota QuotaToProto(const TeamQuota& quota) {
  v1::Quota out;
  out.set_team(quota.team);
  out.set_max_gpus(quota.limits.max_gpus);
  out.set_max_sessions(quota.limits.max_sessions);
  out.set_max_gpu_memory_bytes(quota.limits.max_gpu_memory_bytes);
  out.set_weight(quota.limits.weight);
  for (const auto& [key, max] : quota.limits.max_gpus_by_model) (*out.mutable_max_gpus_by_model())[key] = max;
  out.set_gpus_used(quota.use.gpus);
  out.set_sessions_used(quota.use.sessions);
  out.set_gpu_memory_bytes_used(quota.use.gpu_memory_bytes);
  for (const auto& [key, used] : quota.use.gpus_by_model) (*out.mutable_gpus_used_by_model())[key] = used;
  if (quota.updated != absl::Time()) ToProto(quota.updated, out.mutable_update_time());
  return out;
}

}  // namespace gantry::api
