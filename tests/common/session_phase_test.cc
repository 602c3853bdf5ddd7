#include "common/session_phase.h"

#include <catch2/catch.hpp>

namespace gantry {

using namespace v1;

TEST_CASE("the start path and hibernation are legal moves", "[state-machine]") {
  CHECK(IsLegalTransition(SESSION_PHASE_PENDING, SESSION_PHASE_SCHEDULED));
  CHECK(IsLegalTransition(SESSION_PHASE_SCHEDULED, SESSION_PHASE_STARTING));
  CHECK(IsLegalTransition(SESSION_PHASE_STARTING, SESSION_PHASE_RUNNING));
  CHECK(IsLegalTransition(SESSION_PHASE_SCHEDULED, SESSION_PHASE_RUNNING));
  CHECK(IsLegalTransition(SESSION_PHASE_RUNNING, SESSION_PHASE_HIBERNATED));
  CHECK(IsLegalTransition(SESSION_PHASE_HIBERNATED, SESSION_PHASE_RUNNING));
  CHECK(IsLegalTransition(SESSION_PHASE_RUNNING, SESSION_PHASE_TERMINATING));
  CHECK(IsLegalTransition(SESSION_PHASE_TERMINATING, SESSION_PHASE_TERMINATED));
  CHECK(IsLegalTransition(SESSION_PHASE_STARTING, SESSION_PHASE_FAILED));
  // Moved to another controller after the first refused to start it.
  CHECK(IsLegalTransition(SESSION_PHASE_SCHEDULED, SESSION_PHASE_SCHEDULED));
  CHECK_FALSE(IsLegalTransition(SESSION_PHASE_STARTING, SESSION_PHASE_SCHEDULED));
  CHECK_FALSE(IsLegalTransition(SESSION_PHASE_RUNNING, SESSION_PHASE_RUNNING));  // A duplicate report.
}

TEST_CASE("terminal phases are final and nothing goes backwards", "[state-machine]") {
  for (auto terminal : {SESSION_PHASE_TERMINATED, SESSION_PHASE_FAILED}) {
    for (int to = SESSION_PHASE_PENDING; to <= SESSION_PHASE_FAILED; ++to) {
      CHECK_FALSE(IsLegalTransition(terminal, static_cast<SessionPhase>(to)));
    }
  }
  CHECK_FALSE(IsLegalTransition(SESSION_PHASE_RUNNING, SESSION_PHASE_STARTING));
  CHECK_FALSE(IsLegalTransition(SESSION_PHASE_RUNNING, SESSION_PHASE_PENDING));
  CHECK_FALSE(IsLegalTransition(SESSION_PHASE_TERMINATING, SESSION_PHASE_RUNNING));
  CHECK_FALSE(IsLegalTransition(SESSION_PHASE_STARTING, SESSION_PHASE_HIBERNATED));
  CHECK_FALSE(IsLegalTransition(SESSION_PHASE_RUNNING, SESSION_PHASE_RUNNING));
  CHECK_FALSE(IsLegalTransition(SESSION_PHASE_RUNNING, SESSION_PHASE_UNSPECIFIED));
}

TEST_CASE("phase names round-trip through their stored form", "[state-machine]") {
  for (int p = SESSION_PHASE_PENDING; p <= SESSION_PHASE_FAILED; ++p) {
    auto phase = static_cast<SessionPhase>(p);
    auto parsed = ParsePhase(PhaseName(phase));
    REQUIRE(parsed.ok());
    CHECK(*parsed == phase);
  }
  CHECK_FALSE(ParsePhase("running").ok());
}

}  // namespace gantry
