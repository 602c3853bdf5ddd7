#include "controller/fleet.h"
#include "tests/controller/fake_placement_policy.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace gantry::controller {
namespace {

class FakeChannel : public WorkerChannel {
 public:
  bool Send(const v1::ControllerMessage& m) override {
    {
      std::lock_guard<std::mutex> lock(mu);
      sent.push_back(m);
    }
    if (on_send) on_send(m);  // A worker answering at once.
    return open;
  }
  std::function<void(const v1::ControllerMessage&)> on_send;
  void Close() override { closed = true; }
  std::mutex mu;
  std::vector<v1::ControllerMessage> sent;
  bool open = true;
  bool closed = false;
};

struct Harness {
  std::vector<v1::SessionEvent> events;
  Fleet fleet{"node1", absl::Milliseconds(100), 3,
              [this](const v1::SessionEvent& e) { events.push_back(e); }, absl::Milliseconds(300)};
  std::map<std::string, std::shared_ptr<FakeChannel>> channels;

  void AddWorker(const std::string& name, int gpus, const std::string& model, int64_t gib,
                 std::vector<std::string> skills = {}) {
    v1::RegisterWorkerRequest r;
    r.set_name(name);
    for (int i = 0; i < gpus; ++i) {
      auto* g = r.mutable_hardware()->add_gpus();
      g->set_uuid("GPU-" + name + "-" + std::to_string(i));
      g->set_name(model);
      g->set_memory_total_bytes(gib << 30);
    }
    for (auto& s : skills) r.add_skills(s);
    auto id = fleet.RegisterWorker(r);
    REQUIRE(id.ok());
    v1::WorkerHello hello;
    hello.set_worker_id(*id);
    channels[name] = std::make_shared<FakeChannel>();
    REQUIRE(fleet.Attach(name, hello, channels[name]).ok());
  }

  absl::StatusOr<v1::ControllerSessionResponse> Start(const std::string& id, int gpus,
                                                      const std::string& model = "",
                                                      int64_t min_gib = 0,
                                                      std::vector<std::string> skills = {}) {
    v1::SessionSpec spec;
    spec.add_command("sleep");
    spec.mutable_resources()->mutable_gpus()->set_count(gpus);
    spec.mutable_resources()->mutable_gpus()->set_model(model);
    spec.mutable_resources()->mutable_gpus()->set_min_memory_bytes(min_gib << 30);
    for (auto& s : skills) spec.add_skills(s);
    return fleet.StartSession(id, spec);
  }

  void Report(const std::string& worker, const std::string& session,
              v1::WorkerSessionEvent::Kind kind, int code = 0) {
    v1::WorkerSessionEvent e;
    e.set_session_id(session);
    e.set_kind(kind);
    e.set_exit_code(code);
    e.set_pid(4242);
    REQUIRE(fleet.OnWorkerEvent(worker, e).ok());
  }
};

std::string WorkerOf(const absl::StatusOr<v1::ControllerSessionResponse>& r) {
  REQUIRE(r.ok());
  return r->worker_id();
}

}  // namespace

TEST_CASE("placement honours GPU count, model, memory and skills", "[placement]") {
  Harness h;
  h.AddWorker("small", 1, "NVIDIA A10", 24);
  h.AddWorker("big", 4, "NVIDIA H100 80GB HBM3", 80, {"model/llama"});
  CHECK(WorkerOf(h.Start("s1", 2)) == "node1/big");
  CHECK(WorkerOf(h.Start("s2", 1, "h100")) == "node1/big");  // Case-insensitive substring.
  CHECK(WorkerOf(h.Start("s3", 1, "", 40)) == "node1/big");
  CHECK(WorkerOf(h.Start("s4", 0, "", 0, {"model/llama"})) == "node1/big");
  auto none = h.Start("s5", 1, "", 0, {"model/unknown"});
  CHECK(none.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(std::string(none.status().message()).find("spec.skills") != std::string::npos);
}

TEST_CASE("GPUs are never given twice and come back when the session ends", "[placement]") {
  Harness h;
  h.AddWorker("w", 2, "GPU", 16);
  auto a = h.Start("a", 2);
  REQUIRE(a.ok());
  CHECK(a->gpu_uuids_size() == 2);
  auto b = h.Start("b", 1);
  CHECK(b.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(std::string(b.status().message()).find("spec.resources.gpus") != std::string::npos);
  h.Report("w", "a", v1::WorkerSessionEvent::KIND_STARTED);
  h.Report("w", "a", v1::WorkerSessionEvent::KIND_EXITED, 1);
  REQUIRE(h.events.size() == 2);
  CHECK(h.events[0].phase() == v1::SESSION_PHASE_RUNNING);
  CHECK(h.events[1].phase() == v1::SESSION_PHASE_FAILED);
  CHECK(h.events[1].message() == "process exited with code 1");
  CHECK(h.Start("b", 2).ok());
}

TEST_CASE("least loaded worker first, round-robin among equals", "[placement]") {
  Harness h;
  h.AddWorker("w1", 8, "GPU", 16);
  h.AddWorker("w2", 8, "GPU", 16);
  h.AddWorker("w3", 8, "GPU", 16);
  std::map<std::string, int> counts;
  for (int i = 0; i < 9; ++i) counts[WorkerOf(h.Start("s" + std::to_string(i), 0))]++;
  CHECK(counts["node1/w1"] == 3);
  CHECK(counts["node1/w2"] == 3);
  CHECK(counts["node1/w3"] == 3);
  // End two sessions on w3: it is now the least loaded and gets the next two.
  std::vector<std::string> on_w3;
  for (int i = 0; i < 9; ++i) {
    auto st = h.fleet.SessionStatus("s" + std::to_string(i));
    if (st.ok() && st->worker_id() == "node1/w3") on_w3.push_back("s" + std::to_string(i));
  }
  REQUIRE(on_w3.size() == 3);
  h.Report("w3", on_w3[0], v1::WorkerSessionEvent::KIND_EXITED);
  h.Report("w3", on_w3[1], v1::WorkerSessionEvent::KIND_EXITED);
  CHECK(WorkerOf(h.Start("n1", 0)) == "node1/w3");
  CHECK(WorkerOf(h.Start("n2", 0)) == "node1/w3");
}

TEST_CASE("a start command goes down the chosen worker's stream with the GPUs", "[placement]") {
  Harness h;
  h.AddWorker("w", 2, "GPU", 16);
  auto r = h.Start("s", 1);
  REQUIRE(r.ok());
  CHECK(r->phase() == v1::SESSION_PHASE_STARTING);
  REQUIRE(h.channels["w"]->sent.size() == 1);
  const auto& start = h.channels["w"]->sent[0].start_session();
  CHECK(start.session_id() == "s");
  CHECK(start.gpu_uuids(0) == r->gpu_uuids(0));
}

TEST_CASE("a lost worker fails its sessions and frees its GPUs", "[placement]") {
  Harness h;
  h.AddWorker("w", 1, "GPU", 16);
  REQUIRE(h.Start("s", 1).ok());
  h.Report("w", "s", v1::WorkerSessionEvent::KIND_STARTED);
  h.fleet.Detach("w", "stream broke");
  REQUIRE(h.events.size() == 2);
  CHECK(h.events[1].phase() == v1::SESSION_PHASE_FAILED);
  CHECK(h.events[1].message().find("stream broke") != std::string::npos);
  CHECK(h.Start("t", 1).status().code() == absl::StatusCode::kUnavailable);  // No online worker.
  CHECK(h.fleet.Snapshot().capacity.workers_online() == 0);
}

TEST_CASE("silent workers are cut off after the missed-heartbeat deadline", "[placement]") {
  Harness h;
  h.AddWorker("w", 1, "GPU", 16);
  h.fleet.ExpireSilentWorkers();
  CHECK_FALSE(h.channels["w"]->closed);
  usleep(350 * 1000);  // 3 x 100 ms beats missed.
  h.fleet.ExpireSilentWorkers();
  CHECK(h.channels["w"]->closed);
}

TEST_CASE("a silent worker keeps its sessions through the grace period if it comes back", "[placement]") {
  Harness h;
  h.AddWorker("w", 2, "GPU", 16);
  REQUIRE(h.Start("kept", 1).ok());
  REQUIRE(h.Start("died", 1).ok());
  h.Report("w", "kept", v1::WorkerSessionEvent::KIND_STARTED);
  h.Report("w", "died", v1::WorkerSessionEvent::KIND_STARTED);
  h.events.clear();
  usleep(350 * 1000);
  h.fleet.ExpireSilentWorkers();  // Missed beats: the stream is closed...
  REQUIRE(h.channels["w"]->closed);
  h.fleet.Detach("w", "missed heartbeats");  // ...and the handler detaches it.
  CHECK(h.events.empty());  // Nothing failed yet.
  CHECK(h.fleet.Snapshot().capacity.workers_online() == 0);
  // It returns within the grace period, still running one of the two.
  v1::RegisterWorkerRequest again;
  again.set_name("w");
  for (int i = 0; i < 2; ++i) {
    auto* g = again.mutable_hardware()->add_gpus();
    g->set_uuid("GPU-w-" + std::to_string(i));
    g->set_memory_total_bytes(16LL << 30);
  }
  auto id = h.fleet.RegisterWorker(again);
  REQUIRE(id.ok());
  v1::WorkerHello hello;
  hello.set_worker_id(*id);
  auto st = h.fleet.SessionStatus("kept");
  REQUIRE(st.ok());
  auto* running = hello.add_sessions();
  running->set_session_id("kept");
  running->set_phase(v1::SESSION_PHASE_RUNNING);
  running->add_gpu_uuids(st->gpu_uuids(0));
  REQUIRE(h.fleet.Attach("w", hello, std::make_shared<FakeChannel>()).ok());
  REQUIRE(h.events.size() == 1);
  CHECK(h.events[0].session_id() == "died");
  CHECK(h.events[0].phase() == v1::SESSION_PHASE_FAILED);
  CHECK(h.fleet.SessionStatus("kept")->phase() == v1::SESSION_PHASE_RUNNING);
  // The kept session still holds its GPU; the dead one's is free again.
  CHECK(h.fleet.Snapshot().capacity.gpus_free() == 1);
}

TEST_CASE("a stream that ends after its worker's heartbeats went overdue keeps the sessions for the grace period",
          "[placement]") {
  // As a controller stalled past the worker's keepalive sees it when it runs again: the stream
  // ended by the worker reaches it before its own sweep for silent workers has run.
  Harness h;
  h.AddWorker("w", 1, "GPU", 16);
  REQUIRE(h.Start("s", 1).ok());
  h.Report("w", "s", v1::WorkerSessionEvent::KIND_STARTED);
  h.events.clear();
  usleep(350 * 1000);  // 3 x 100 ms beats missed; ExpireSilentWorkers not run.
  h.fleet.Detach("w", "missed heartbeats or cancelled");
  CHECK(h.events.empty());
  CHECK(h.fleet.SessionStatus("s")->phase() == v1::SESSION_PHASE_RUNNING);
  CHECK(h.fleet.Snapshot().capacity.workers_online() == 0);
}

TEST_CASE("a silent worker that does not come back loses its sessions after the grace period", "[placement]") {
  Harness h;
  h.AddWorker("w", 1, "GPU", 16);
  REQUIRE(h.Start("s", 1).ok());
  h.Report("w", "s", v1::WorkerSessionEvent::KIND_STARTED);
  h.events.clear();
  usleep(350 * 1000);
  h.fleet.ExpireSilentWorkers();
  h.fleet.Detach("w", "missed heartbeats");
  CHECK(h.events.empty());
  usleep(350 * 1000);  // Past the 300 ms grace.
  h.fleet.ExpireSilentWorkers();
  REQUIRE(h.events.size() == 1);
  CHECK(h.events[0].phase() == v1::SESSION_PHASE_FAILED);
  CHECK(h.events[0].message().find("did not come back") != std::string::npos);
}

TEST_CASE("workers with impossible hardware or a duplicate connection are refused", "[placement]") {
  Harness h;
  h.AddWorker("w", 1, "GPU", 16);
  v1::RegisterWorkerRequest dup;
  dup.set_name("w");
  CHECK(h.fleet.RegisterWorker(dup).status().code() == absl::StatusCode::kAlreadyExists);
  v1::RegisterWorkerRequest bad;
  bad.set_name("x");
  auto* g = bad.mutable_hardware()->add_gpus();
  g->set_uuid("GPU-x");
  g->set_memory_total_bytes(10);
  g->set_memory_free_bytes(20);
  CHECK(h.fleet.RegisterWorker(bad).status().code() == absl::StatusCode::kInvalidArgument);
  v1::RegisterWorkerRequest stolen;
  stolen.set_name("y");
  stolen.mutable_hardware()->add_gpus()->set_uuid("GPU-w-0");  // w's GPU.
  CHECK(h.fleet.RegisterWorker(stolen).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("every phase change is reported once and in order, also those a call waits for", "[placement]") {
  Harness h;
  h.AddWorker("w", 1, "GPU", 16);
  auto started = h.Start("s", 1);
  REQUIRE(started.ok());
  CHECK(started->phase() == v1::SESSION_PHASE_STARTING);  // The outcome is the event's to tell.
  CHECK(h.events.empty());
  h.Report("w", "s", v1::WorkerSessionEvent::KIND_STARTED);
  // A hibernate waits for the worker's confirmation; the change itself is an event all the same.
  h.channels["w"]->on_send = [&](const v1::ControllerMessage& m) {
    if (m.has_hibernate_session()) h.Report("w", "s", v1::WorkerSessionEvent::KIND_HIBERNATED);
  };
  auto hibernated = h.fleet.SetHibernated("s", true, absl::Seconds(30));
  REQUIRE(hibernated.ok());
  CHECK(hibernated->phase() == v1::SESSION_PHASE_HIBERNATED);
  h.Report("w", "s", v1::WorkerSessionEvent::KIND_WOKEN);
  h.Report("w", "s", v1::WorkerSessionEvent::KIND_EXITED, 3);
  std::vector<v1::SessionPhase> phases;
  for (const auto& e : h.events) phases.push_back(e.phase());
  CHECK(phases == std::vector<v1::SessionPhase>{v1::SESSION_PHASE_RUNNING, v1::SESSION_PHASE_HIBERNATED,
                                                v1::SESSION_PHASE_RUNNING, v1::SESSION_PHASE_FAILED});
  CHECK(h.events.back().message() == "process exited with code 3");
}

TEST_CASE("a start asked for again is not started twice and its state is reported again", "[placement]") {
  Harness h;
  h.AddWorker("w", 2, "GPU", 16);
  REQUIRE(h.Start("s", 1).ok());
  // Asked again while starting: the same answer, no second command, nothing to report yet.
  auto again = h.Start("s", 1);
  REQUIRE(again.ok());
  CHECK(again->phase() == v1::SESSION_PHASE_STARTING);
  CHECK(h.events.empty());
  h.Report("w", "s", v1::WorkerSessionEvent::KIND_STARTED);
  // Asked again once running (a lost report, a resumed placement): RUNNING, reported anew.
  auto resumed = h.Start("s", 1);
  REQUIRE(resumed.ok());
  CHECK(resumed->phase() == v1::SESSION_PHASE_RUNNING);
  CHECK(h.channels["w"]->sent.size() == 1);
  REQUIRE(h.events.size() == 2);
  CHECK(h.events[1].session_id() == "s");
  CHECK(h.events[1].phase() == v1::SESSION_PHASE_RUNNING);
  CHECK(h.events[1].worker_id() == "node1/w");
  CHECK(h.fleet.Snapshot().capacity.gpus_free() == 1);
}

TEST_CASE("the fleet offers a policy its online workers and never lets it give a GPU twice", "[placement]") {
  auto owned = std::make_unique<testing::FakePlacementPolicy>();
  testing::FakePlacementPolicy* policy = owned.get();
  std::vector<v1::SessionEvent> events;
  Fleet fleet{"node1", absl::Seconds(1), 3, [&](const v1::SessionEvent& e) { events.push_back(e); },
              absl::Seconds(1), std::move(owned)};
  for (const std::string name : {"w1", "w2"}) {
    v1::RegisterWorkerRequest r;
    r.set_name(name);
    for (int i = 0; i < 2; ++i) r.mutable_hardware()->add_gpus()->set_uuid("GPU-" + name + "-" + std::to_string(i));
    auto id = fleet.RegisterWorker(r);
    REQUIRE(id.ok());
    v1::WorkerHello hello;
    hello.set_worker_id(*id);
    REQUIRE(fleet.Attach(name, hello, std::make_shared<FakeChannel>()).ok());
  }
  v1::SessionSpec one;
  one.add_command("sleep");
  one.mutable_resources()->mutable_gpus()->set_count(1);
  policy->worker = "w2";
  policy->gpus = {"GPU-w2-1"};
  auto first = fleet.StartSession("a", one);
  REQUIRE(first.ok());
  CHECK(policy->offered == std::vector<std::string>{"w1", "w2"});
  CHECK(first->worker_id() == "node1/w2");
  CHECK(first->gpu_uuids(0) == "GPU-w2-1");
  // The same GPU again, another worker's GPU, or too many: refused, nothing taken.
  auto twice = fleet.StartSession("b", one);
  CHECK(twice.status().code() == absl::StatusCode::kInternal);
  policy->gpus = {"GPU-w1-0"};
  CHECK(fleet.StartSession("c", one).status().code() == absl::StatusCode::kInternal);
  policy->gpus = {"GPU-w2-0", "GPU-w2-1"};
  CHECK(fleet.StartSession("d", one).status().code() == absl::StatusCode::kInternal);
  CHECK(fleet.Snapshot().capacity.gpus_free() == 3);
  CHECK(fleet.SessionStatus("b").status().code() == absl::StatusCode::kNotFound);
  // Each worker's room is in the snapshot too (what a preemption is planned by).
  std::map<std::string, std::pair<int, int>> rooms;  // worker id -> (free, total)
  const FleetSnapshot snapshot = fleet.Snapshot();
  for (const auto& w : snapshot.capacity.workers()) rooms[w.worker_id()] = {w.gpus_free(), w.gpus_total()};
  CHECK(rooms == std::map<std::string, std::pair<int, int>>{{"node1/w1", {2, 2}}, {"node1/w2", {1, 2}}});
}

TEST_CASE("a heartbeat is recorded while a placement holds the fleet and new skills reach placement",
          "[placement]") {
  // A policy that holds the fleet's lock (Choose runs under it) until the test lets it go.
  class HeldPolicy : public PlacementPolicy {
   public:
    absl::StatusOr<PlacementChoice> Choose(const CandidateWalk&, const GpuLedger&, const v1::SessionSpec&,
                                           const std::string&) override {
      std::unique_lock<std::mutex> lock(mu);
      choosing = true;
      changed.notify_all();
      changed.wait(lock, [&] { return released; });
      return absl::ResourceExhaustedError("held policy: nothing fits");
    }
    std::mutex mu;
    std::condition_variable changed;
    bool choosing = false;
    bool released = false;
  };
  auto owned = std::make_unique<HeldPolicy>();
  HeldPolicy* policy = owned.get();
  Fleet fleet{"node1", absl::Seconds(1), 3, [](const v1::SessionEvent&) {}, absl::Seconds(1), std::move(owned)};
  v1::RegisterWorkerRequest r;
  r.set_name("w");
  auto* gpu = r.mutable_hardware()->add_gpus();
  gpu->set_uuid("GPU-w-0");
  gpu->set_memory_total_bytes(16 << 20);
  auto id = fleet.RegisterWorker(r);
  REQUIRE(id.ok());
  v1::WorkerHello hello;
  hello.set_worker_id(*id);
  REQUIRE(fleet.Attach("w", hello, std::make_shared<FakeChannel>()).ok());

  v1::SessionSpec spec;
  spec.add_command("sleep");
  std::thread placing([&] { CHECK_FALSE(fleet.StartSession("s", spec).ok()); });
  {
    std::unique_lock<std::mutex> lock(policy->mu);
    policy->changed.wait(lock, [&] { return policy->choosing; });
  }
  // The placement holds the fleet's lock now; the heartbeat must not need it.
  v1::WorkerHeartbeat beat;
  beat.set_active_invokes(3);
  auto* live = beat.add_gpus();
  live->set_uuid("GPU-w-0");
  live->set_memory_free_bytes(5 << 20);
  live->set_utilization_percent(40);
  std::mutex mu;
  std::condition_variable beaten_cv;
  bool beaten = false;
  std::thread beating([&] {
    fleet.Heartbeat("w", beat);
    std::lock_guard<std::mutex> lock(mu);
    beaten = true;
    beaten_cv.notify_all();
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    // Bounded only so that a heartbeat blocked behind the placement fails here instead of hanging.
    CHECK(beaten_cv.wait_for(lock, std::chrono::seconds(30), [&] { return beaten; }));
  }
  {
    std::lock_guard<std::mutex> lock(policy->mu);
    policy->released = true;
    policy->changed.notify_all();
  }
  beating.join();
  placing.join();
  CHECK(fleet.Snapshot().load.active_invokes() == 3);
  auto workers = fleet.Workers();
  REQUIRE(workers.size() == 1);
  CHECK(workers[0].gpus(0).memory_free_bytes() == 5 << 20);
  CHECK(workers[0].gpus(0).utilization_percent() == 40);

  // New skills are the fleet's to know: the snapshot (and so placement) sees them.
  const uint64_t generation = fleet.generation();
  beat.add_skills("model/llama");
  fleet.Heartbeat("w", beat);
  CHECK(fleet.generation() > generation);
  CHECK(fleet.Snapshot().skills == std::vector<std::string>{"model/llama"});
  REQUIRE(fleet.Workers()[0].skills_size() == 1);
}

TEST_CASE("events for sessions a worker does not hold are rejected", "[placement]") {
  Harness h;
  h.AddWorker("w1", 1, "GPU", 16);
  h.AddWorker("w2", 1, "GPU", 16);
  auto r = h.Start("s", 1);
  REQUIRE(r.ok());
  std::string other = r->worker_id() == "node1/w1" ? "w2" : "w1";
  v1::WorkerSessionEvent e;
  e.set_session_id("s");
  e.set_kind(v1::WorkerSessionEvent::KIND_STARTED);
  CHECK(h.fleet.OnWorkerEvent(other, e).code() == absl::StatusCode::kInvalidArgument);
}

}  // namespace gantry::controller
