// The reconciliation a heartbeat carries, against a real PostgreSQL: ControllerStore::Heartbeat
// compares the sessions a controller lists with the sessions PostgreSQL has placed on it, in
// the batched statement that stores the heartbeat.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "api-server/controller_store.h"
#include "api-server/session_store.h"
#include "tests/api-server/store_fixture.h"

namespace gantry::api {
namespace {

constexpr absl::Duration kGrace = absl::Seconds(1);
constexpr absl::Duration kRecent = absl::Seconds(30);

struct Fixture : testing::StoreFixture {
  std::string Register(const std::string& name) { return RegisterController(name, 4); }
  // A session placed on `controller`, moved to `phase`.
  std::string Session(const std::string& controller, v1::SessionPhase phase) {
    v1::SessionSpec spec;
    spec.add_command("sleep");
    Reservation on{controller, "test"};
    auto s = sessions.Create("user/alice", "", "", spec, &on);
    REQUIRE(s.ok());
    auto to = [&](v1::SessionPhase p) {
      PhaseChange c;
      c.phase = p;
      c.message = "test";
      REQUIRE(sessions.Transition(s->id(), c).ok());
    };
    if (phase == v1::SESSION_PHASE_HIBERNATED) to(v1::SESSION_PHASE_RUNNING);
    if (phase != v1::SESSION_PHASE_SCHEDULED) to(phase);
    return s->id();
  }
  absl::StatusOr<HeartbeatAnswer> Beat(const std::string& controller, const std::string& name,
                                       const std::vector<std::string>& held, bool complete) {
    v1::HeartbeatRequest r;
    r.set_controller_id(controller);
    r.set_controller_token("token-" + name);
    for (const auto& id : held) r.add_session_ids(id);
    r.set_session_ids_complete(complete);
    return controllers.Heartbeat(r, name, kGrace, kRecent);
  }
};

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

TEST_CASE("a heartbeat is answered with the sessions it holds that PostgreSQL does not want there", "[pg][registry]") {
  Fixture f;
  const std::string c1 = f.Register("c1"), c2 = f.Register("c2");
  const std::string live = f.Session(c1, v1::SESSION_PHASE_RUNNING), ended = f.Session(c1, v1::SESSION_PHASE_FAILED),
                    elsewhere = f.Session(c2, v1::SESSION_PHASE_RUNNING);
  const std::string unknown = "00000000-0000-0000-0000-00000000abcd", garbage = "not-a-uuid', 'x";

  auto answer = f.Beat(c1, "c1", {live, ended, elsewhere, unknown, garbage}, false);
  REQUIRE(answer.ok());
  CHECK(Sorted(answer->unwanted) == Sorted({ended, elsewhere, unknown, garbage}));
  CHECK(answer->lost.empty());
  answer = f.Beat(c2, "c2", {elsewhere}, true);
  REQUIRE(answer.ok());
  CHECK(answer->unwanted.empty());
  CHECK(f.Beat(c1, "c1", {}, false)->unwanted.empty());
  // Refused, it reconciles nothing either.
  CHECK(f.Beat(c1, "c2", {live, ended}, true).status().code() == absl::StatusCode::kUnauthenticated);
  CHECK(f.db.Scalar("SELECT count(*) FROM unheld_sessions") == "0");
}

TEST_CASE("a live session left out of a controller's complete heartbeats through the whole grace is lost",
          "[pg][registry]") {
  Fixture f;
  const std::string c1 = f.Register("c1"), c2 = f.Register("c2");
  const std::string held = f.Session(c1, v1::SESSION_PHASE_RUNNING), missing = f.Session(c1, v1::SESSION_PHASE_RUNNING),
                    hibernated = f.Session(c1, v1::SESSION_PHASE_HIBERNATED);
  f.Session(c1, v1::SESSION_PHASE_SCHEDULED);  // a placement in flight: never missing
  f.Session(c1, v1::SESSION_PHASE_FAILED);     // ended: never missing
  const std::string on_c2 = f.Session(c2, v1::SESSION_PHASE_RUNNING);
  f.db.Scalar("UPDATE sessions SET updated_at = now() - interval '1 hour' RETURNING 1");
  f.Session(c1, v1::SESSION_PHASE_RUNNING);  // changed within `recent`: never missing yet

  // An incomplete list says nothing about what it leaves out.
  REQUIRE(f.Beat(c1, "c1", {held}, false).ok());
  CHECK(f.db.Scalar("SELECT count(*) FROM unheld_sessions") == "0");
  // First absence from a complete list is only noted: nothing is lost before the grace.
  auto answer = f.Beat(c1, "c1", {held, "not-a-uuid"}, true);
  REQUIRE(answer.ok());
  CHECK(answer->lost.empty());
  CHECK(f.db.Scalar("SELECT string_agg(session_id::text, ',' ORDER BY session_id) FROM unheld_sessions") ==
        absl::StrJoin(Sorted({missing, hibernated}), ","));
  f.db.Scalar("UPDATE unheld_sessions SET since = now() - interval '1 minute' RETURNING 1");
  // Listed again, `hibernated` is forgotten; `missing` was absent throughout: lost. c2's
  // heartbeat in the same moment neither loses nor forgets c1's sessions.
  std::vector<absl::StatusOr<HeartbeatAnswer>> answers(2, absl::InternalError("not run"));
  std::thread other([&] { answers[1] = f.Beat(c2, "c2", {}, true); });
  answers[0] = f.Beat(c1, "c1", {held, hibernated}, true);
  other.join();
  REQUIRE(answers[0].ok());
  REQUIRE(answers[1].ok());
  CHECK(answers[0]->lost == std::vector<std::string>{missing});
  CHECK(answers[1]->lost.empty());
  CHECK(f.db.Scalar("SELECT string_agg(session_id::text, ',' ORDER BY session_id) FROM unheld_sessions") ==
        absl::StrJoin(Sorted({missing, on_c2}), ","));
  // Ended, its note goes with the next heartbeat.
  PhaseChange failed;
  failed.phase = v1::SESSION_PHASE_FAILED;
  failed.message = "lost";
  REQUIRE(f.sessions.Transition(missing, failed).ok());
  CHECK(f.Beat(c1, "c1", {held, hibernated}, true)->lost.empty());
  CHECK(f.db.Scalar("SELECT count(*) FROM unheld_sessions WHERE session_id <> '" + on_c2 + "'") == "0");
}

}  // namespace gantry::api
