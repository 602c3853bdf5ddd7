#include "worker/nvml.h"

#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>

namespace gantry::worker {

TEST_CASE("NVML is loaded at run time and reports each GPU", "[nvml]") {
  auto nvml = Nvml::Load(GANTRY_FAKE_NVML);
  REQUIRE(nvml.ok());
  auto gpus = (*nvml)->Devices();
  REQUIRE(gpus.ok());
  REQUIRE(gpus->size() == 2);
  const auto& b = (*gpus)[1];
  CHECK(b.index() == 1);
  CHECK(b.name() == "Fake NVML GPU B");
  CHECK(b.uuid() == "GPU-fa4e0000-0000-0000-0000-00000000000b");
  CHECK(b.memory_total_bytes() == 16LL << 30);
  CHECK(b.memory_free_bytes() == 15LL << 30);
  CHECK(b.utilization_percent() == 41);
  CHECK(b.temperature_celsius() == 55);
  CHECK(b.power_milliwatts() == 150000);
  CHECK_FALSE(b.simulated());
}

TEST_CASE("NVML reports GPU memory per process", "[nvml]") {
  setenv("FAKE_NVML_PIDS", "4242,77", 1);
  auto nvml = Nvml::Load(GANTRY_FAKE_NVML);
  REQUIRE(nvml.ok());
  auto by_pid = (*nvml)->ProcessMemory();
  unsetenv("FAKE_NVML_PIDS");
  CHECK(by_pid.size() == 2);
  CHECK(by_pid[4242] == 123LL << 20);
}

TEST_CASE("no driver means NOT_FOUND, not a crash", "[nvml]") {
  auto nvml = Nvml::Load("libnvidia-ml-does-not-exist.so.1");
  CHECK(nvml.status().code() == absl::StatusCode::kNotFound);
  auto wrong = Nvml::Load("libc.so.6");  // Loads, but is not NVML.
  CHECK(wrong.status().code() == absl::StatusCode::kUnavailable);
}

}  // namespace gantry::worker
