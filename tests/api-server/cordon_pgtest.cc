// Cordon and uncordon against a real PostgreSQL: what the told controller answers is stored
// before the call returns, so placement sees the GPUs it holds now.
#include <catch2/catch.hpp>

#include "api-server/admin_manager.h"
#include "api-server/admin_store.h"
#include "tests/api-server/store_fixture.h"

namespace gantry::api {
namespace {

struct CordonFixture : testing::StoreFixture {
  testing::FakeControllerClient client;
  TemplateStore templates{&pool};
  AdminStore admin_store{&pool, absl::Seconds(15)};
  AdminManager admin{&admin_store, &client, &templates};
};

PlacementRequest OneGpu() {
  PlacementRequest r;
  r.gpu_count = 1;
  return r;
}

TEST_CASE("an uncordoned controller's answer is stored before the call returns: the GPUs a drain freed are placeable "
          "at once",
          "[pg][admin]") {
  CordonFixture f;
  // Its last heartbeat came while its one worker's 4 GPUs were all held.
  const std::string id = f.RegisterController("node1", 4, "127.0.0.1:1", /*max_free_on_one_worker=*/0);
  REQUIRE(f.admin.SetCordoned(id, true).ok());
  REQUIRE(f.controllers.Candidates(OneGpu(), 5)->empty());

  v1::SetCordonedResponse now;
  now.mutable_capacity()->set_workers_online(1);
  now.mutable_capacity()->set_gpus_total(4);
  now.mutable_capacity()->set_gpus_free(4);
  now.mutable_capacity()->set_max_free_gpus_per_worker(4);
  now.mutable_capacity()->set_max_gpu_memory_bytes(80LL << 30);
  f.client.ScriptCordon(now);
  REQUIRE(f.admin.SetCordoned(id, false).ok());
  auto candidates = f.controllers.Candidates(OneGpu(), 5);
  REQUIRE(candidates.ok());
  REQUIRE(candidates->size() == 1);
  CHECK(candidates->at(0).id == id);
  CHECK(f.db.Scalar("SELECT gpus_free FROM controllers WHERE id = '" + id + "'") == "4");
}

TEST_CASE("an uncordon the controller cannot be told of still lifts the cordon and leaves its capacity as last reported",
          "[pg][admin]") {
  CordonFixture f;
  const std::string id = f.RegisterController("node1", 4, "127.0.0.1:1", /*max_free_on_one_worker=*/2);
  REQUIRE(f.admin.SetCordoned(id, true).ok());
  // The fake answers UNAVAILABLE unless scripted: the controller learns at its next heartbeat.
  auto back = f.admin.SetCordoned(id, false);
  REQUIRE(back.ok());
  CHECK_FALSE(back->cordoned());
  CHECK(f.db.Scalar("SELECT max_free_gpus_per_worker FROM controllers WHERE id = '" + id + "'") == "2");
  CHECK(f.controllers.Candidates(OneGpu(), 5)->size() == 1);
}

}  // namespace
}  // namespace gantry::api
