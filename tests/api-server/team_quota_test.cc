#include "api-server/team_quota.h"

#include <catch2/catch.hpp>

#include "absl/strings/match.h"

namespace gantry::api {
namespace {

TeamQuota Quota(QuotaLimits limits, QuotaUse use = {}) { return {"red", std::move(limits), std::move(use), {}}; }

}  // namespace

TEST_CASE("quota: each limit refuses the session that would pass it, naming the limit, the use and the need",
          "[api][quota]") {
  QuotaLimits gpus;
  gpus.max_gpus = 8;
  CHECK(CheckQuota(Quota(gpus, {6, 3, {}, 0}), {2, "A100", 0}).ok());
  absl::Status over = CheckQuota(Quota(gpus, {7, 3, {}, 0}), {2, "A100", 0});
  CHECK(over.code() == absl::StatusCode::kResourceExhausted);
  CHECK(absl::StrContains(over.message(), "quota of team \"red\": max_gpus is 8 and the team holds 7; this "
                                          "session needs 2 more"));
  CHECK(IsQuotaRefusal(over));
  CHECK_FALSE(IsQuotaRefusal(absl::ResourceExhaustedError("controller full")));

  QuotaLimits sessions;
  sessions.max_sessions = 2;
  CHECK(CheckQuota(Quota(sessions, {0, 1, {}, 0}), {}).ok());
  CHECK(absl::StrContains(CheckQuota(Quota(sessions, {0, 2, {}, 0}), {}).message(), "max_sessions is 2"));

  QuotaLimits memory;
  memory.max_gpu_memory_bytes = 100;
  CHECK(CheckQuota(Quota(memory, {0, 0, {}, 60}), {1, "", 40}).ok());
  CHECK(absl::StrContains(CheckQuota(Quota(memory, {0, 0, {}, 61}), {1, "", 40}).message(),
                          "max_gpu_memory_bytes is 100 and the team holds 61; this session needs 40 more"));
  // A session without GPUs holds no GPU memory, whatever the team holds.
  CHECK(CheckQuota(Quota(memory, {0, 0, {}, 1000}), {}).ok());
}

TEST_CASE("quota: a model's limit counts only GPUs of a model it matches, as placement matches models",
          "[api][quota]") {
  QuotaLimits limits;
  limits.max_gpus_by_model["a100"] = 4;
  TeamQuota quota = Quota(limits);
  const QuotaCharge a100{3, "NVIDIA A100-SXM4-80GB", 0};
  const QuotaCharge h100{3, "NVIDIA H100 80GB HBM3", 0};
  REQUIRE(CheckQuota(quota, a100).ok());
  AddCharge(&quota, a100);
  CHECK(quota.use.gpus_by_model["a100"] == 3);
  CHECK(quota.use.gpus == 3);
  CHECK(quota.use.sessions == 1);
  CHECK(absl::StrContains(CheckQuota(quota, a100).message(),
                          "max_gpus_by_model[\"a100\"] is 4 and the team holds 3; this session needs 3 more"));
  CHECK(CheckQuota(quota, h100).ok());
  AddCharge(&quota, h100);
  CHECK(quota.use.gpus_by_model["a100"] == 3);
  // A session on a controller of both models, asking for neither, may be either: it counts as both.
  CHECK_FALSE(CheckQuota(quota, {2, "NVIDIA A100-SXM4-80GB, NVIDIA H100 80GB HBM3", 0}).ok());
}

TEST_CASE("quota: what a session is charged on a controller: its model, or the controller's, and its GPUs' memory",
          "[api][quota]") {
  const std::vector<std::string> mixed = {"NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3"};
  QuotaCharge asked = ChargeOn(2, "h100", mixed, 80);
  CHECK(asked.gpu_model == "NVIDIA H100 80GB HBM3");
  CHECK(asked.gpu_memory_bytes == 160);
  CHECK(ChargeOn(1, "", {"NVIDIA A100-SXM4-80GB"}, 80).gpu_model == "NVIDIA A100-SXM4-80GB");
  CHECK(ChargeOn(1, "", mixed, 80).gpu_model == "NVIDIA A100-SXM4-80GB, NVIDIA H100 80GB HBM3");
  const QuotaCharge none = ChargeOn(0, "a100", mixed, 80);
  CHECK(none.gpu_model.empty());
  CHECK(none.gpu_memory_bytes == 0);
}

TEST_CASE("quota: team names are names or a principal's team of one, and each team has one lock key",
          "[api][quota]") {
  CHECK(ValidateTeamName("ml-research", "team").ok());
  CHECK(ValidateTeamName("user/alice", "team").ok());
  CHECK(ValidateTeamName("admin/ops", "team").ok());
  CHECK(ValidateTeamName("worker/w1", "team").code() == absl::StatusCode::kInvalidArgument);
  CHECK(ValidateTeamName("", "team").code() == absl::StatusCode::kInvalidArgument);
  CHECK(absl::StartsWith(ValidateTeamName("Red Team", "team").message(), "team: "));
  CHECK(TeamLockKey("red") == TeamLockKey("red"));
  CHECK(TeamLockKey("red") != TeamLockKey("blue"));
}

}  // namespace gantry::api
