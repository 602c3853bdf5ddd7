// The invariant checker itself: it holds on a healthy fleet and names each kind of violation
// when PostgreSQL is made to disagree with what runs (so the fault tests that use it can fail).
#include <signal.h>

#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "tests/support/invariants.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

bool Mentions(const std::vector<std::string>& violations, const std::string& words) {
  for (const auto& v : violations) {
    if (absl::StrContains(v, words)) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("invariants: the checker holds on a healthy fleet and names ghosts, lost sessions and bad paths",
          "[e2e][faults]") {
  LocalFleet fleet;
  fleet.api_env["GANTRY_OFFLINE_AFTER"] = "100";  // The controller is frozen below, not lost.
  fleet.StartSingleNode("2", 2);
  v1::Session a, b;
  REQUIRE(fleet.CreateAsAdmin(SleepSpec("3600.5151"), &a).ok());
  REQUIRE(fleet.CreateAsAdmin(SleepSpec("3600.5252"), &b).ok());
  RequireInvariants(fleet, std::vector<std::string>{a.id(), b.id()});

  InvariantOptions unknown;
  unknown.acknowledged = {"00000000-0000-0000-0000-000000000000"};
  auto violations = InvariantViolations(fleet, unknown);
  INFO(absl::StrJoin(violations, "\n"));
  CHECK(Mentions(violations, "acknowledged session 00000000-0000-0000-0000-000000000000 is not in PostgreSQL"));

  // PostgreSQL says a's process is gone while it runs: a ghost. b's events get an illegal step.
  // The controller is frozen meanwhile: its next heartbeat would get the ghost stopped.
  fleet.controller().Signal(SIGSTOP);
  fleet.db().Scalar("UPDATE sessions SET phase = 'TERMINATED' WHERE id = '" + a.id() + "' RETURNING 1");
  fleet.db().Scalar("INSERT INTO session_events (session_id, from_phase, to_phase) VALUES ('" + b.id() +
                    "', 'RUNNING', 'PENDING') RETURNING 1");
  violations = InvariantViolations(fleet, {});
  INFO(absl::StrJoin(violations, "\n"));
  CHECK(Mentions(violations, "ghost: pid"));
  CHECK(Mentions(violations, "RUNNING -> PENDING is not a legal transition"));
  CHECK(Mentions(violations, "its events end at RUNNING, it is TERMINATED"));  // a, changed behind its back
  // Thawed, the controller lists a in its heartbeat and is told to stop it: the ghost goes.
  fleet.controller().Signal(SIGCONT);
  CHECK(WaitFor([&] { return !Mentions(InvariantViolations(fleet, {}), "ghost: pid"); }, absl::Seconds(10)));
  CHECK(PidsWithCmdline("sleep 3600.5151").empty());
  CHECK(PidsWithCmdline("sleep 3600.5252").size() == 1);
  // A session PostgreSQL calls RUNNING that no worker ever ran: lost.
  std::string lost = fleet.db().Scalar(
      "INSERT INTO sessions (owner, spec, labels, gpu_count, phase) VALUES ('admin/ops', '{}', '{}', 0, 'RUNNING') "
      "RETURNING id");
  violations = InvariantViolations(fleet, {});
  INFO(absl::StrJoin(violations, "\n"));
  CHECK(Mentions(violations, "lost: session " + lost + " is RUNNING"));
}

}  // namespace gantry::testing
