#include "common/identity.h"

#include <catch2/catch.hpp>

namespace gantry {

TEST_CASE("SPIFFE ids parse into role and name", "[identity]") {
  auto worker = ParseSpiffeId("spiffe://gantry/worker/gpu-node-1.w0");
  REQUIRE(worker.ok());
  CHECK(worker->role == Role::kWorker);
  CHECK(worker->name == "gpu-node-1.w0");
  CHECK(worker->Principal() == "worker/gpu-node-1.w0");

  auto api = ParseSpiffeId("spiffe://gantry/api-server");
  REQUIRE(api.ok());
  CHECK(api->role == Role::kApiServer);
  CHECK(api->SpiffeId() == "spiffe://gantry/api-server");
}

TEST_CASE("SPIFFE ids outside the gantry trust domain or malformed are refused", "[identity]") {
  for (const char* bad : {"spiffe://other/worker/w1", "spiffe://gantry/worker",
                          "spiffe://gantry/worker/w1/extra", "spiffe://gantry/root/w1",
                          "spiffe://gantry/user/UPPER", "spiffe://gantry/user/", "https://gantry/user/a",
                          "spiffe://gantry/api-server/x", "spiffe://gantry/admin/-lead"}) {
    INFO(bad);
    auto parsed = ParseSpiffeId(bad);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.status().code() == absl::StatusCode::kUnauthenticated);
  }
}

TEST_CASE("role names round-trip and unknown roles are rejected", "[identity]") {
  for (Role r : {Role::kApiServer, Role::kController, Role::kWorker, Role::kAdmin, Role::kUser}) {
    auto parsed = ParseRole(RoleName(r));
    REQUIRE(parsed.ok());
    CHECK(*parsed == r);
  }
  CHECK_FALSE(ParseRole("superuser").ok());
}

TEST_CASE("names are bounded and restricted to a safe alphabet", "[identity]") {
  CHECK(IsValidName("a"));
  CHECK(IsValidName(std::string(63, 'a')));
  CHECK_FALSE(IsValidName(std::string(64, 'a')));
  CHECK_FALSE(IsValidName(""));
  CHECK_FALSE(IsValidName("a/b"));
  CHECK_FALSE(IsValidName("a,b"));
  CHECK_FALSE(IsValidName(std::string("a\0b", 3)));
}

}  // namespace gantry
