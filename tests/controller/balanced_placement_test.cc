// The production balancer on its own, without a Fleet: candidates and a ledger in, a choice
// or a refusal naming the field out.
#include "controller/balanced_placement.h"
#include "controller/worker_load_order.h"

#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

namespace gantry::controller {
namespace {

struct TestWorker {
  std::string name;
  std::vector<v1::GpuInfo> gpus;
  std::vector<std::string> skills;
  size_t active = 0;
};

TestWorker Worker(const std::string& name, int gpus, const std::string& model, int64_t gib,
                  std::vector<std::string> skills = {}, size_t active = 0) {
  TestWorker w{name, {}, std::move(skills), active};
  for (int i = 0; i < gpus; ++i) {
    v1::GpuInfo g;
    g.set_uuid("GPU-" + name + "-" + std::to_string(i));
    g.set_name(model);
    g.set_memory_total_bytes(gib << 30);
    w.gpus.push_back(g);
  }
  return w;
}

CandidateList Candidates(const std::vector<TestWorker>& workers) {
  std::vector<WorkerCandidate> out;
  for (const auto& w : workers) out.push_back({&w.name, &w.gpus, &w.skills, w.active});
  return CandidateList(std::move(out));
}

v1::SessionSpec Asking(int gpus, const std::string& model = "", int64_t min_gib = 0,
                       std::vector<std::string> skills = {}) {
  v1::SessionSpec spec;
  spec.mutable_resources()->mutable_gpus()->set_count(gpus);
  spec.mutable_resources()->mutable_gpus()->set_model(model);
  spec.mutable_resources()->mutable_gpus()->set_min_memory_bytes(min_gib << 30);
  for (auto& s : skills) spec.add_skills(s);
  return spec;
}

}  // namespace

TEST_CASE("the balancer matches skills, then GPU model and memory among free GPUs", "[placement]") {
  BalancedPlacement policy;
  GpuLedger ledger;
  const std::vector<TestWorker> workers = {Worker("small", 2, "NVIDIA A10", 24),
                                           Worker("big", 2, "NVIDIA H100 80GB HBM3", 80, {"model/llama"})};
  const auto online = Candidates(workers);
  auto h100 = policy.Choose(online, ledger, Asking(1, "h100"), "node1");
  REQUIRE(h100.ok());
  CHECK(workers[h100->worker].name == "big");
  CHECK(h100->gpus == std::vector<std::string>{"GPU-big-0"});
  // The big worker's first GPU held: the next free one is chosen, never a held one.
  REQUIRE(ledger.Assign("s1", {"GPU-big-0"}));
  auto roomy = policy.Choose(online, ledger, Asking(1, "", 40), "node1");
  REQUIRE(roomy.ok());
  CHECK(roomy->gpus == std::vector<std::string>{"GPU-big-1"});
  auto skilled = policy.Choose(online, ledger, Asking(0, "", 0, {"model/llama"}), "node1");
  REQUIRE(skilled.ok());
  CHECK(workers[skilled->worker].name == "big");

  auto no_skill = policy.Choose(online, ledger, Asking(0, "", 0, {"model/unknown"}), "node1");
  CHECK(no_skill.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(std::string(no_skill.status().message()) == "spec.skills: no online worker has all of [model/unknown]");
  auto too_many = policy.Choose(online, ledger, Asking(2, "h100"), "node1");
  CHECK(too_many.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(std::string(too_many.status().message()) ==
        "spec.resources.gpus: asked for 2 GPU(s) of model \"h100\"; the most matching free GPUs on one worker of "
        "node node1 is 1");
  CHECK(policy.Choose(CandidateList({}), ledger, Asking(0), "node1").status().code() == absl::StatusCode::kUnavailable);
}

TEST_CASE("the balancer takes the first candidate in the order given that fits", "[placement]") {
  BalancedPlacement policy;
  GpuLedger ledger;
  const std::vector<TestWorker> workers = {Worker("full", 1, "GPU", 16), Worker("w2", 2, "GPU", 16),
                                           Worker("w3", 2, "GPU", 16)};
  REQUIRE(ledger.Assign("s0", {"GPU-full-0"}));
  const auto online = Candidates(workers);
  auto one = policy.Choose(online, ledger, Asking(1), "node1");
  REQUIRE(one.ok());
  CHECK(workers[one->worker].name == "w2");  // "full" comes first but has no free GPU.
  CHECK(one->gpus == std::vector<std::string>{"GPU-w2-0"});
  auto none = policy.Choose(online, ledger, Asking(0), "node1");
  REQUIRE(none.ok());
  CHECK(workers[none->worker].name == "full");  // No GPU asked: the first fits.
}

TEST_CASE("the balancer looks at workers only until one fits", "[placement]") {
  // Placement by index: at 1,000 workers a decision must not visit every one of them.
  class CountingWalk : public CandidateWalk {
   public:
    explicit CountingWalk(const std::vector<TestWorker>& workers) : list_(Candidates(workers)) {}
    bool empty() const override { return list_.empty(); }
    void Walk(absl::FunctionRef<bool(size_t, const WorkerCandidate&)> visit) const override {
      list_.Walk([&](size_t i, const WorkerCandidate& c) {
        ++visited;
        return visit(i, c);
      });
    }
    mutable int visited = 0;

   private:
    CandidateList list_;
  };
  BalancedPlacement policy;
  GpuLedger ledger;
  std::vector<TestWorker> workers;
  for (int i = 0; i < 1000; ++i) workers.push_back(Worker("w" + std::to_string(i), 8, "GPU", 16));
  for (int g = 0; g < 8; ++g) REQUIRE(ledger.Assign("s" + std::to_string(g), {"GPU-w0-" + std::to_string(g)}));
  CountingWalk online(workers);
  auto chosen = policy.Choose(online, ledger, Asking(1), "node1");
  REQUIRE(chosen.ok());
  CHECK(workers[chosen->worker].name == "w1");
  CHECK(online.visited == 2);  // w0 is full; w1 fits; nothing after it is looked at.
  // A refusal must explain itself, so it looks at every worker.
  online.visited = 0;
  CHECK(policy.Choose(online, ledger, Asking(9), "node1").status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(online.visited == 1000);
}

TEST_CASE("workers are offered least loaded first, the one chosen longest ago first among equals", "[placement]") {
  struct W {
    std::string name;
  } a{"a"}, b{"b"}, c{"c"};
  WorkerLoadOrder<W> order;
  auto names = [&] {
    std::string out;
    order.ForEach([&](W* w, size_t load) {
      out += w->name + std::to_string(load) + " ";
      return true;
    });
    return out;
  };
  order.Update(&c, &c.name, 0);
  order.Update(&b, &b.name, 2);
  order.Update(&a, &a.name, 0);
  CHECK(names() == "a0 c0 b2 ");  // Never chosen: by name.
  // Chosen (and now with one session more), a goes behind its new equals.
  order.Update(&a, &a.name, 1, /*chosen=*/true);
  CHECK(names() == "c0 a1 b2 ");
  order.Update(&c, &c.name, 1, /*chosen=*/true);
  CHECK(names() == "a1 c1 b2 ");  // Both at one: a was chosen longer ago.
  // Its session ended: a is back at zero, still remembered as chosen before c.
  order.Update(&a, &a.name, 0);
  order.Update(&c, &c.name, 0);
  CHECK(names() == "a0 c0 b2 ");
  order.Update(&a, &a.name, 0, /*chosen=*/true);
  CHECK(names() == "c0 a0 b2 ");  // Taking turns among equals.
  order.Remove(&c);
  CHECK(names() == "a0 b2 ");
  CHECK(order.size() == 2);
}

TEST_CASE("the GPU ledger never gives a GPU to two sessions and releases only its holder's", "[placement]") {
  GpuLedger ledger;
  REQUIRE(ledger.Assign("a", {"GPU-0", "GPU-1"}));
  CHECK_FALSE(ledger.Assign("b", {"GPU-2", "GPU-1"}));
  CHECK(ledger.IsFree("GPU-2"));  // Refused whole: nothing of it was taken.
  CHECK(ledger.Assign("a", {"GPU-0"}));  // Its own again (a re-adoption).
  ledger.Release("b", {"GPU-0"});        // Not b's: stays a's.
  CHECK(ledger.Holder("GPU-0") == std::optional<std::string>("a"));
  ledger.Release("a", {"GPU-0", "GPU-1"});
  CHECK(ledger.held() == 0);
}

}  // namespace gantry::controller
