// A worker's heartbeats on their own: what they record, and when they say the worker went
// silent, with the clock given (no waiting).
#include "controller/worker_pulse.h"

#include <catch2/catch.hpp>

namespace gantry::controller {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'000'000);

v1::WorkerHeartbeat Beat(int active_invokes = 0) {
  v1::WorkerHeartbeat beat;
  beat.set_active_invokes(active_invokes);
  return beat;
}

}  // namespace

TEST_CASE("a backlog of heartbeats read at once after an overdue gap does not prove the worker alive",
          "[placement]") {
  WorkerPulse pulse({}, {}, kStart, absl::Milliseconds(300));
  pulse.Beat(Beat(), kStart + absl::Milliseconds(100));
  CHECK_FALSE(pulse.WentSilent(kStart + absl::Milliseconds(150)));
  CHECK(pulse.deadline() == kStart + absl::Milliseconds(400));
  CHECK(pulse.WentSilent(kStart + absl::Milliseconds(401)));  // Overdue.

  // The controller was stalled for 10 s; the beats the worker sent meanwhile arrive together.
  const absl::Time resumed = kStart + absl::Seconds(10);
  for (int i = 0; i < 5; ++i) pulse.Beat(Beat(), resumed + absl::Milliseconds(i));
  CHECK(pulse.deadline() > resumed);
  CHECK(pulse.WentSilent(resumed + absl::Milliseconds(5)));

  // Beats that keep coming for a whole span after the gap: the worker is there.
  for (int ms = 100; ms <= 400; ms += 100) pulse.Beat(Beat(), resumed + absl::Milliseconds(ms));
  CHECK_FALSE(pulse.WentSilent(resumed + absl::Milliseconds(450)));

  // A new stream starts afresh, whatever the old one carried.
  pulse.Beat(Beat(), resumed + absl::Seconds(5));
  CHECK(pulse.WentSilent(resumed + absl::Seconds(5)));
  pulse.Restart(resumed + absl::Seconds(6));
  CHECK_FALSE(pulse.WentSilent(resumed + absl::Seconds(6)));
}

TEST_CASE("a heartbeat records live GPU figures of registered GPUs only, and reports new skills once",
          "[placement]") {
  v1::GpuInfo gpu;
  gpu.set_uuid("GPU-0");
  gpu.set_memory_total_bytes(100);
  gpu.set_memory_free_bytes(100);
  WorkerPulse pulse({gpu}, {"model/a"}, kStart, absl::Seconds(3));
  v1::WorkerHeartbeat beat = Beat(2);
  beat.add_skills("model/a");
  auto* live = beat.add_gpus();
  live->set_uuid("GPU-0");
  live->set_memory_free_bytes(60);
  live->set_utilization_percent(70);
  beat.add_gpus()->set_uuid("GPU-unregistered");
  CHECK_FALSE(pulse.Beat(beat, kStart + absl::Seconds(1)).has_value());  // Same skills.
  CHECK(pulse.active_invokes() == 2);
  std::vector<v1::GpuInfo> gpus = {gpu};
  pulse.CopyLiveFigures(gpus);
  REQUIRE(gpus.size() == 1);
  CHECK(gpus[0].memory_free_bytes() == 60);
  CHECK(gpus[0].utilization_percent() == 70);
  beat.add_skills("model/b");
  auto skills = pulse.Beat(beat, kStart + absl::Seconds(2));
  REQUIRE(skills.has_value());
  CHECK(*skills == std::vector<std::string>{"model/a", "model/b"});
  CHECK_FALSE(pulse.Beat(beat, kStart + absl::Seconds(3)).has_value());
}

}  // namespace gantry::controller
