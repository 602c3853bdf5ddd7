#include "worker/gpu_inventory.h"

#include <catch2/catch.hpp>

namespace gantry::worker {

TEST_CASE("simulated GPUs parse with stable, distinct UUIDs", "[gpu]") {
  auto gpus = ParseSimulatedGpus("2:Simulated A100:40;1:Simulated H100:80", "w1");
  REQUIRE(gpus.ok());
  REQUIRE(gpus->size() == 3);
  CHECK((*gpus)[0].name() == "Simulated A100");
  CHECK((*gpus)[0].memory_total_bytes() == 40LL * 1024 * 1024 * 1024);
  CHECK((*gpus)[2].name() == "Simulated H100");
  CHECK((*gpus)[2].index() == 2);
  CHECK((*gpus)[0].simulated());
  CHECK((*gpus)[0].uuid() != (*gpus)[1].uuid());
  CHECK((*gpus)[0].uuid().rfind("GPU-", 0) == 0);
  auto again = ParseSimulatedGpus("2:Simulated A100:40", "w1");
  CHECK((*again)[0].uuid() == (*gpus)[0].uuid());  // Stable across restarts.
  auto other = ParseSimulatedGpus("1", "w2");
  CHECK((*other)[0].uuid() != (*gpus)[0].uuid());  // Distinct across workers.
}

TEST_CASE("malformed simulated GPU specs are rejected", "[gpu]") {
  CHECK(ParseSimulatedGpus("", "w")->empty());
  CHECK_FALSE(ParseSimulatedGpus("two", "w").ok());
  CHECK_FALSE(ParseSimulatedGpus("-1", "w").ok());
  CHECK_FALSE(ParseSimulatedGpus("65", "w").ok());
  CHECK_FALSE(ParseSimulatedGpus("1:A:lots", "w").ok());
  CHECK_FALSE(ParseSimulatedGpus("1:A:0", "w").ok());
  CHECK_FALSE(ParseSimulatedGpus("1:A:8:extra", "w").ok());
}

}  // namespace gantry::worker
