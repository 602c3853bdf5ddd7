// Who sessions run as: uids handed out one per live session, and held for homes an earlier run
// of the worker left behind until they are gone.
#include <catch2/catch.hpp>

#include <set>

#include "absl/strings/str_cat.h"
#include "worker/session_identity.h"

namespace gantry::worker {
namespace {

TEST_CASE("a leftover home's uid is given to no session until it is released", "[worker][identity]") {
  auto identities = SessionIdentities::Create("200000-200003", "", false);
  REQUIRE(identities.ok());
  auto held = identities->Hold("leftover/a", 200002);
  REQUIRE(held.ok());
  CHECK(held->drop);
  CHECK(held->uid == 200002);
  CHECK(held->gid == 200002);
  CHECK(held->groups.empty());

  std::set<uid_t> given;
  for (int i = 0; i < 3; ++i) {
    auto user = identities->Acquire(absl::StrCat("s", i));
    REQUIRE(user.ok());
    given.insert(user->uid);
  }
  CHECK(given == std::set<uid_t>{200000, 200001, 200003});
  CHECK(identities->Acquire("s3").status().code() == absl::StatusCode::kResourceExhausted);

  identities->Release("leftover/a");
  auto next = identities->Acquire("s3");
  REQUIRE(next.ok());
  CHECK(next->uid == 200002);
}

TEST_CASE("only a uid of the range, not taken, is held for a leftover home", "[worker][identity]") {
  auto identities = SessionIdentities::Create("200000-200003", "", false);
  REQUIRE(identities.ok());
  CHECK(identities->Hold("leftover/root", 0).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(identities->Hold("leftover/above", 200004).status().code() == absl::StatusCode::kInvalidArgument);
  auto live = identities->Acquire("live");
  REQUIRE(live.ok());
  CHECK(identities->Hold("leftover/b", live->uid).status().code() == absl::StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace gantry::worker
