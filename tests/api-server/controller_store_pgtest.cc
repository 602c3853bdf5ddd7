// ControllerStore against a real PostgreSQL: registration keeps ids, tokens are hashed and
// checked, selection filters and orders.
#include "api-server/controller_store.h"

#include <catch2/catch.hpp>
#include <pqxx/connection>

#include "api-server/migration_runner.h"
#include "common/pg_pool.h"
#include "common/tokens.h"
#include "tests/support/test_env.h"

namespace gantry::api {
namespace {

struct Fixture {
  testing::TestDatabase db;
  PgPool pool{db.dsn(), 4};
  ControllerStore store{&pool, absl::Seconds(15)};
  Fixture() {
    pqxx::connection c(db.dsn());
    REQUIRE(ApplyMigrations(c, EmbeddedMigrations()).ok());
  }
  std::string Register(const std::string& name, int free_gpus, const std::string& token,
                       const std::string& type = "gpu-node") {
    v1::RegisterControllerRequest r;
    r.set_name(name);
    r.set_type(type);
    r.set_endpoint("127.0.0.1:1");
    (*r.mutable_labels())["zone"] = name == "a" ? "west" : "east";
    r.mutable_capacity()->set_max_free_gpus_per_worker(free_gpus);
    r.mutable_capacity()->set_gpus_total(free_gpus);
    r.mutable_capacity()->set_max_gpu_memory_bytes(80LL << 30);
    auto reg = store.Register(r, Sha256Hex(token), absl::Hours(1));
    REQUIRE(reg.ok());
    return reg->first;
  }
};

}  // namespace

TEST_CASE("re-registering under the same name keeps the id and rotates the token", "[pg][registry]") {
  Fixture f;
  std::string id = f.Register("a", 2, "token-one");
  CHECK(f.store.VerifyToken(id, "token-one").ok());
  CHECK(f.Register("a", 2, "token-two") == id);
  CHECK(f.store.VerifyToken(id, "token-one").code() == absl::StatusCode::kUnauthenticated);
  CHECK(f.store.VerifyToken(id, "token-two").ok());
  CHECK(f.db.Scalar("SELECT count(*) FROM controllers") == "1");
  // Only the hash is stored.
  CHECK(f.db.Scalar("SELECT count(*) FROM controller_tokens WHERE token_sha256 = '" +
                    Sha256Hex("token-two") + "'") == "1");
  CHECK(f.db.Scalar("SELECT count(*) FROM controller_tokens WHERE token_sha256 LIKE '%token%'") == "0");
}

TEST_CASE("wrong, expired or malformed controller credentials are refused alike", "[pg][registry]") {
  Fixture f;
  std::string id = f.Register("a", 1, "good");
  CHECK(f.store.VerifyToken(id, "bad").code() == absl::StatusCode::kUnauthenticated);
  CHECK(f.store.VerifyToken(id, "").code() == absl::StatusCode::kUnauthenticated);
  CHECK(f.store.VerifyToken("not-a-uuid", "good").code() == absl::StatusCode::kUnauthenticated);
  CHECK(f.store.VerifyToken("00000000-0000-0000-0000-000000000000", "good").code() ==
        absl::StatusCode::kUnauthenticated);
  f.db.Scalar("UPDATE controller_tokens SET expires_at = now() - interval '1 second'");
  CHECK(f.store.VerifyToken(id, "good").code() == absl::StatusCode::kUnauthenticated);
}

TEST_CASE("selection filters by GPUs, id, type, labels, health and cordon", "[pg][registry]") {
  Fixture f;
  std::string a = f.Register("a", 1, "t");
  std::string b = f.Register("b", 4, "t", "big-node");
  PlacementRequest four;
  four.gpu_count = 4;
  auto c = f.store.Candidates(four, 5);
  REQUIRE(c.ok());
  REQUIRE(c->size() == 1);
  CHECK((*c)[0].id == b);

  PlacementRequest by_type;
  by_type.controller_type = "gpu-node";
  CHECK(f.store.Candidates(by_type, 5)->at(0).id == a);

  PlacementRequest by_label;
  by_label.selector_json = R"({"zone":"east"})";
  CHECK(f.store.Candidates(by_label, 5)->at(0).id == b);

  PlacementRequest by_id;
  by_id.controller_id = a;
  CHECK(f.store.Candidates(by_id, 5)->size() == 1);

  f.db.Scalar("UPDATE controllers SET cordoned = true WHERE name = 'b'");
  CHECK(f.store.Candidates(four, 5)->empty());
  f.db.Scalar("UPDATE controllers SET cordoned = false, last_heartbeat = now() - interval '1 minute'");
  CHECK(f.store.Candidates(PlacementRequest{}, 5)->empty());  // Stale heartbeats.
  REQUIRE(f.store.MarkOffline(a).ok());
  CHECK(f.db.Scalar("SELECT status FROM controllers WHERE name = 'a'") == "offline");
}

TEST_CASE("equally loaded controllers are chosen in turn", "[pg][registry]") {
  Fixture f;
  f.Register("a", 1, "t");
  f.Register("b", 1, "t");
  std::vector<std::string> firsts;
  for (int i = 0; i < 4; ++i) {
    auto c = f.store.Candidates(PlacementRequest{}, 5);
    REQUIRE(c.ok());
    firsts.push_back(c->at(0).name);
    REQUIRE(f.store.NoteSelected(c->at(0).id).ok());
    // Keep the load equal, as heartbeats would once both have a session.
    f.db.Scalar("UPDATE controllers SET active_sessions = 0");
  }
  CHECK(firsts[0] != firsts[1]);
  CHECK(firsts[0] == firsts[2]);
  CHECK(firsts[1] == firsts[3]);
}

TEST_CASE("invoke candidates: capability and version range, health and cordon, least busy first",
          "[pg][registry]") {
  Fixture f;
  std::string a = f.Register("a", 0, "t");
  std::string b = f.Register("b", 0, "t");
  std::string c = f.Register("c", 0, "t");
  auto set = [&](const std::string& id, const std::string& caps, int invokes) {
    f.db.Scalar("UPDATE controllers SET capabilities = '" + caps + "', load = '{\"active_invokes\": " +
                std::to_string(invokes) + "}' WHERE id = '" + id + "' RETURNING 1");
  };
  set(a, R"([{"name": "demo/echo", "version": "1.4.0"}])", 5);
  set(b, R"([{"name": "demo/echo", "version": "2.0.0"}, {"name": "demo/echo", "version": "1.9.0"}])", 1);
  set(c, R"([{"name": "demo/tokens", "version": "1.0.0"}])", 0);
  auto any = [](const std::string&) { return true; };
  auto v1 = [](const std::string& v) { return v.rfind("1.", 0) == 0; };
  auto names = [](const std::vector<ControllerTarget>& t) {
    std::string out;
    for (const auto& x : t) out += x.name;
    return out;
  };
  CHECK(names(*f.store.InvokeCandidates("demo/echo", any, 5)) == "ba");  // Least busy first, once each.
  CHECK(names(*f.store.InvokeCandidates("demo/echo", v1, 5)) == "ba");
  CHECK(names(*f.store.InvokeCandidates("demo/echo", [](const std::string& v) { return v == "1.4.0"; }, 5)) == "a");
  CHECK(names(*f.store.InvokeCandidates("demo/echo", any, 1)) == "b");
  CHECK(f.store.InvokeCandidates("demo/missing", any, 5)->empty());
  // A name that looks like SQL is only a name.
  CHECK(f.store.InvokeCandidates("x' OR '1'='1", any, 5)->empty());
  f.db.Scalar("UPDATE controllers SET cordoned = true WHERE name = 'b' RETURNING 1");
  f.db.Scalar("UPDATE controllers SET status = 'unhealthy' WHERE name = 'c' RETURNING 1");
  CHECK(names(*f.store.InvokeCandidates("demo/echo", any, 5)) == "a");
  CHECK(f.store.InvokeCandidates("demo/tokens", any, 5)->empty());
}

}  // namespace gantry::api
