#include "api-server/preemption_plan.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace gantry::api {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

// A candidate on worker `worker` of controller "c1", which has `free` GPUs free and its
// controller `free` unreserved unless said otherwise.
PreemptionCandidate On(const std::string& worker, const std::string& id, int gpus, int32_t priority,
                       absl::Duration started_ago, int free = 0) {
  PreemptionCandidate c;
  c.session_id = id;
  c.priority_class = "batch";
  c.gpus = gpus;
  c.priority = priority;
  c.started = kNow - started_ago;
  c.controller_id = "c1";
  c.worker_id = worker;
  c.worker_gpus_free = free;
  c.controller_unreserved = free;
  return c;
}

std::vector<std::string> Victims(const std::optional<PreemptionPlan>& plan) {
  std::vector<std::string> ids;
  if (plan) {
    for (const auto& v : plan->victims) ids.push_back(v.session_id);
  }
  return ids;
}

TEST_CASE("a preemption stops the lowest priority first, and of equals the most recently started",
          "[preemption]") {
  const auto plan = PlanPreemption(1, {On("w1", "old-low", 1, 0, absl::Hours(2)),
                                       On("w1", "new-low", 1, 0, absl::Minutes(5)),
                                       On("w1", "new-mid", 1, 5, absl::Minutes(1))});
  REQUIRE(plan.has_value());
  CHECK(plan->worker_id == "w1");
  CHECK(Victims(plan) == std::vector<std::string>{"new-low"});
}

TEST_CASE("a preemption stops the fewest sessions, even of a higher priority", "[preemption]") {
  // Two 1-GPU sessions of priority 0, or one 2-GPU session of priority 1: one is fewer.
  const auto plan = PlanPreemption(
      2, {On("w1", "a", 1, 0, absl::Hours(1)), On("w1", "b", 1, 0, absl::Hours(1)), On("w1", "big", 2, 1, absl::Hours(1))});
  CHECK(Victims(plan) == std::vector<std::string>{"big"});
}

TEST_CASE("a preemption counts the GPUs a worker has free and needs them all on one worker", "[preemption]") {
  // w1 has one free: one more is enough there. w2's two sessions would be two victims.
  const auto plan = PlanPreemption(2, {On("w1", "one", 1, 0, absl::Hours(1), /*free=*/1),
                                       On("w2", "x", 1, 0, absl::Hours(1)), On("w2", "y", 1, 0, absl::Hours(1))});
  REQUIRE(plan.has_value());
  CHECK(plan->worker_id == "w1");
  CHECK(Victims(plan) == std::vector<std::string>{"one"});
  // Victims spread over two workers never make room for one session.
  CHECK_FALSE(PlanPreemption(2, {On("w1", "a", 1, 0, absl::Hours(1)), On("w2", "b", 1, 0, absl::Hours(1))}));
}

TEST_CASE("a preemption needs room in the controller's reservations too", "[preemption]") {
  // The worker reports two free GPUs, but its controller has them all reserved (sessions being
  // placed there): the victim's GPUs must cover what the reservations lack.
  PreemptionCandidate a = On("w1", "a", 1, 0, absl::Hours(1), /*free=*/2);
  PreemptionCandidate b = On("w1", "b", 1, 0, absl::Minutes(1), /*free=*/2);
  a.controller_unreserved = b.controller_unreserved = 0;
  CHECK(Victims(PlanPreemption(2, {a, b})).size() == 2);
}

TEST_CASE("usage over a team's quota is preempted before usage within it", "[preemption]") {
  PreemptionCandidate over = On("w1", "over", 1, 3, absl::Hours(3));
  over.over_quota = true;
  const auto plan = PlanPreemption(1, {On("w1", "within", 1, 0, absl::Minutes(1)), over});
  CHECK(Victims(plan) == std::vector<std::string>{"over"});
}

TEST_CASE("nothing is preempted when no plan makes room", "[preemption]") {
  CHECK_FALSE(PlanPreemption(4, {On("w1", "a", 1, 0, absl::Hours(1)), On("w1", "b", 2, 0, absl::Hours(1))}));
  CHECK_FALSE(PlanPreemption(1, {}));
  CHECK_FALSE(PlanPreemption(0, {On("w1", "a", 1, 0, absl::Hours(1))}));  // It needs no GPUs.
}

TEST_CASE("a worker with more sessions than subsets can be tried takes them in order", "[preemption]") {
  std::vector<PreemptionCandidate> many;
  for (int i = 0; i < 20; ++i) many.push_back(On("w1", "s" + std::to_string(i), 1, i % 3, absl::Minutes(i + 1)));
  const auto plan = PlanPreemption(2, many);
  REQUIRE(plan.has_value());
  // Priority 0 first (s0, s3, s6, ...), the most recently started of them first: s0, then s3.
  CHECK(Victims(plan) == std::vector<std::string>{"s0", "s3"});
}

}  // namespace
}  // namespace gantry::api
