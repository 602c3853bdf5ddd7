// ControllerStore against a real PostgreSQL: registration keeps ids, tokens are hashed and
// checked, heartbeats are written in batches, selection filters and orders (by its index).
#include "api-server/controller_store.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <pqxx/connection>
#include <pqxx/nontransaction>
#include <pqxx/result>
#include <pqxx/transaction>

#include <future>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include "api-server/migration_runner.h"
#include "api-server/sql_queries.h"
#include "common/pg_pool.h"
#include "common/tokens.h"
#include "tests/api-server/store_fixture.h"

namespace gantry::api {
namespace {

struct Fixture : testing::StoreFixture {
  ControllerStore& store = controllers;
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
  CHECK(f.store.VerifyToken(id, "token-one", "a").ok());
  CHECK(f.Register("a", 2, "token-two") == id);
  CHECK(f.store.VerifyToken(id, "token-one", "a").code() == absl::StatusCode::kUnauthenticated);
  CHECK(f.store.VerifyToken(id, "token-two", "a").ok());
  CHECK(f.db.Scalar("SELECT count(*) FROM controllers") == "1");
  // Only the hash is stored.
  CHECK(f.db.Scalar("SELECT count(*) FROM controller_tokens WHERE token_sha256 = '" +
                    Sha256Hex("token-two") + "'") == "1");
  CHECK(f.db.Scalar("SELECT count(*) FROM controller_tokens WHERE token_sha256 LIKE '%token%'") == "0");
}

TEST_CASE("wrong, expired or malformed controller credentials are refused alike", "[pg][registry]") {
  Fixture f;
  std::string id = f.Register("a", 1, "good");
  CHECK(f.store.VerifyToken(id, "bad", "a").code() == absl::StatusCode::kUnauthenticated);
  CHECK(f.store.VerifyToken(id, "", "a").code() == absl::StatusCode::kUnauthenticated);
  CHECK(f.store.VerifyToken("not-a-uuid", "good", "a").code() == absl::StatusCode::kUnauthenticated);
  CHECK(f.store.VerifyToken("00000000-0000-0000-0000-000000000000", "good", "a").code() ==
        absl::StatusCode::kUnauthenticated);
  // A heartbeat checks the token itself, and writes nothing when it is refused.
  auto beat = [&](const std::string& controller_id, const std::string& token) {
    v1::HeartbeatRequest r;
    r.set_controller_id(controller_id);
    r.set_controller_token(token);
    r.mutable_capacity()->set_gpus_total(77);
    return f.store.Heartbeat(r, "a", absl::Minutes(2), absl::Seconds(5)).status().code();
  };
  CHECK(beat(id, "good") == absl::StatusCode::kOk);
  f.db.Scalar("UPDATE controllers SET gpus_total = 1, last_heartbeat = now() - interval '1 hour'");
  const std::string before = f.db.Scalar("SELECT gpus_total || ' ' || last_heartbeat FROM controllers");
  CHECK(beat(id, "bad") == absl::StatusCode::kUnauthenticated);
  CHECK(beat(id, "") == absl::StatusCode::kUnauthenticated);
  CHECK(beat("not-a-uuid", "good") == absl::StatusCode::kUnauthenticated);
  f.db.Scalar("UPDATE controller_tokens SET expires_at = now() - interval '1 second'");
  CHECK(f.store.VerifyToken(id, "good", "a").code() == absl::StatusCode::kUnauthenticated);
  CHECK(beat(id, "good") == absl::StatusCode::kUnauthenticated);
  CHECK(f.db.Scalar("SELECT gpus_total || ' ' || last_heartbeat FROM controllers") == before);
}

TEST_CASE("a certificate cannot act as another controller, even with that controller's token", "[pg][registry]") {
  Fixture f;
  std::string a = f.Register("a", 1, "token-a");
  f.Register("b", 1, "token-b");
  f.db.Scalar("UPDATE controllers SET last_heartbeat = now() - interval '1 hour'");
  const std::string before = f.db.Scalar("SELECT string_agg(name || gpus_total || last_heartbeat, ',' ORDER BY name) "
                                         "FROM controllers");
  // b's certificate with a's id and live token: refused, naming both.
  absl::Status as_a = f.store.VerifyToken(a, "token-a", "b");
  CHECK(as_a.code() == absl::StatusCode::kPermissionDenied);
  CHECK(as_a.message() == "the certificate names controller \"b\", but controller " + a +
                              " is \"a\": a controller acts only as itself");
  v1::HeartbeatRequest r;
  r.set_controller_id(a);
  r.set_controller_token("token-a");
  r.mutable_capacity()->set_gpus_total(77);
  absl::Status beat = f.store.Heartbeat(r, "b", absl::Minutes(2), absl::Seconds(5)).status();
  CHECK(beat.code() == absl::StatusCode::kPermissionDenied);
  CHECK(beat.message() == as_a.message());
  // Without the live token it learns nothing more than any wrong token does.
  CHECK(f.store.VerifyToken(a, "token-b", "b").code() == absl::StatusCode::kUnauthenticated);
  r.set_controller_token("token-b");
  CHECK(f.store.Heartbeat(r, "b", absl::Minutes(2), absl::Seconds(5)).status().code() ==
        absl::StatusCode::kUnauthenticated);
  CHECK(f.db.Scalar("SELECT string_agg(name || gpus_total || last_heartbeat, ',' ORDER BY name) FROM controllers") ==
        before);
  // Its own certificate: accepted.
  r.set_controller_token("token-a");
  CHECK(f.store.Heartbeat(r, "a", absl::Minutes(2), absl::Seconds(5)).ok());
  CHECK(f.db.Scalar("SELECT gpus_total FROM controllers WHERE name = 'a'") == "77");
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
    // What a placement's reservation does to the controller it chose.
    f.db.Scalar("UPDATE controllers SET last_selected_at = clock_timestamp() WHERE id = '" + c->at(0).id +
                "' RETURNING 1");
    // Keep the load equal, as heartbeats would once both have a session.
    f.db.Scalar("UPDATE controllers SET active_sessions = 0");
  }
  CHECK(firsts[0] != firsts[1]);
  CHECK(firsts[0] == firsts[2]);
  CHECK(firsts[1] == firsts[3]);
}

TEST_CASE("invoke candidates: a row per version served, health and cordon, least busy first", "[pg][registry]") {
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
  // "name@version/invokes" for each row.
  auto rows = [&](const std::string& capability) {
    auto found = f.store.InvokeCandidateRows(capability);
    REQUIRE(found.ok());
    std::vector<std::string> out;
    for (const auto& r : *found) out.push_back(r.target.name + "@" + r.version + "/" + std::to_string(r.active_invokes));
    std::sort(out.begin(), out.end());
    return out;
  };
  auto echo = f.store.InvokeCandidateRows("demo/echo");
  REQUIRE(echo.ok());
  REQUIRE(echo->size() == 3);
  CHECK(echo->at(0).target.name == "b");  // Least busy first.
  CHECK(echo->at(1).target.name == "b");
  CHECK(echo->at(2).target.name == "a");
  CHECK(echo->at(2).target.id == a);
  CHECK(rows("demo/echo") == std::vector<std::string>{"a@1.4.0/5", "b@1.9.0/1", "b@2.0.0/1"});
  CHECK(rows("demo/missing").empty());
  // A name that looks like SQL is only a name.
  CHECK(rows("x' OR '1'='1").empty());
  f.db.Scalar("UPDATE controllers SET cordoned = true WHERE name = 'b' RETURNING 1");
  f.db.Scalar("UPDATE controllers SET status = 'unhealthy' WHERE name = 'c' RETURNING 1");
  CHECK(rows("demo/echo") == std::vector<std::string>{"a@1.4.0/5"});
  CHECK(rows("demo/tokens").empty());
}


TEST_CASE("heartbeats arriving together are written together, each answered for its own controller",
          "[pg][registry]") {
  Fixture f;
  constexpr int kControllers = 24;
  std::vector<std::string> ids;
  for (int i = 0; i < kControllers; ++i) ids.push_back(f.Register(absl::StrCat("c", i), 1, "t"));
  f.db.Scalar("UPDATE controllers SET cordoned = true WHERE name = 'c7'");
  // Upper case names the same controller: its answer must still find it.
  ids[3] = absl::AsciiStrToUpper(ids[3]);
  std::vector<absl::StatusOr<HeartbeatAnswer>> answers(kControllers + 3, absl::InternalError("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kControllers + 3; ++i) {
    threads.emplace_back([&, i] {
      v1::HeartbeatRequest beat;
      // Two that are not registered: unknown, and not even a UUID. Neither spoils the others.
      // And one that names controller 5 with the wrong token, whatever batch it lands in.
      beat.set_controller_id(i < kControllers        ? ids[i]
                             : i == kControllers     ? "00000000-0000-0000-0000-000000000001"
                             : i == kControllers + 1 ? "x'); DROP TABLE controllers; --"
                                                     : ids[5]);
      beat.set_controller_token(i == kControllers + 2 ? "not-t" : "t");
      beat.mutable_capacity()->set_gpus_total(100 + i);
      beat.mutable_load()->set_active_sessions(i);
      beat.add_skills(absl::StrCat("skill-", i));
      answers[i] = f.store.Heartbeat(beat, absl::StrCat("c", i < kControllers ? i : 5), absl::Minutes(2),
                                     absl::Seconds(5));
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kControllers; ++i) {
    INFO("controller " << i);
    REQUIRE(answers[i].ok());
    CHECK(answers[i]->cordoned == (i == 7));
    CHECK(f.db.Scalar(absl::StrCat("SELECT gpus_total || ' ' || active_sessions || ' ' || (skills->>0) FROM controllers "
                                   "WHERE name = 'c", i, "'")) == absl::StrCat(100 + i, " ", i, " skill-", i));
  }
  for (int i = kControllers; i < kControllers + 3; ++i) {
    CHECK(answers[i].status().code() == absl::StatusCode::kUnauthenticated);
  }
  CHECK(f.db.Scalar("SELECT count(*) FROM controllers") == std::to_string(kControllers));
}

TEST_CASE("selection reads the controllers in index order even when their heartbeat statistics are stale",
          "[pg][registry]") {
  // The planner's statistics on last_heartbeat always predate the latest heartbeats; were the
  // freshness test written on the bare column, it would estimate that no controller is fresh
  // and filter and sort them all for every create (22 ms at 10,000 controllers).
  Fixture f;
  f.db.Scalar(
      "INSERT INTO controllers (name, type, endpoint, gpus_total, max_free_gpus_per_worker, last_heartbeat) "
      "SELECT 'bulk-' || i, 'gpu-node', '127.0.0.1:1', 8, 8, now() - interval '1 hour' "
      "FROM generate_series(1, 5000) i");
  // Sessions on them make each controller's reservation check cost something to the planner.
  f.db.Scalar("INSERT INTO sessions (owner, controller_id, phase, gpu_count, spec) "
              "SELECT 'bulk', id, 'RUNNING', 1, '{}' FROM controllers LIMIT 2000");
  f.db.Scalar("ANALYZE");
  f.db.Scalar("UPDATE controllers SET last_heartbeat = now()");
  std::string query = std::string(sql::kSelectControllerCandidates);
  pqxx::connection c(f.db.dsn());
  pqxx::nontransaction tx(c);
  std::string plan;
  for (const auto& row : tx.exec_params("EXPLAIN " + query, 1, 0, 15.0, "", "", "{}", 3, "[]", "")) {
    plan += row[0].as<std::string>() + "\n";
  }
  INFO(plan);
  // The planner must not take the fresh controllers for next to none (rows=1), which makes
  // its choice between the index and a full scan and sort a matter of chance.
  const size_t scan = plan.find("Index Scan using controllers_selection_order on controllers c");
  REQUIRE(scan != std::string::npos);
  const size_t rows = plan.find("rows=", scan);
  REQUIRE(rows != std::string::npos);
  CHECK(std::stoi(plan.substr(rows + 5)) > 100);
  CHECK(plan.find("Sort") == std::string::npos);
  PlacementRequest one;
  one.gpu_count = 1;
  auto chosen = f.store.Candidates(one, 3);
  REQUIRE(chosen.ok());
  CHECK(chosen->size() == 3);
}

TEST_CASE("a health check that finds what PostgreSQL already has writes nothing, not even a row lock",
          "[pg][registry]") {
  Fixture f;
  const std::string a = f.Register("a", 2, "t"), b = f.Register("b", 2, "t");
  auto record = [&](int gpus_free) {
    v1::ControllerCapacity capacity;
    capacity.set_gpus_total(2);
    capacity.set_gpus_free(gpus_free);
    v1::ControllerLoad load;
    load.set_active_sessions(2 - gpus_free);
    std::string rows = "[";
    for (const auto& id : {a, b}) {
      absl::StrAppend(&rows, rows.size() > 1 ? "," : "", AnsweredRowJson(id, capacity, load));
    }
    pqxx::connection c(f.db.dsn());
    pqxx::nontransaction tx(c);
    tx.exec_params(std::string(sql::kRecordHealthChecksOk), rows + "]");
  };
  // The row version (xmin, ctid) changes with every write and every FOR UPDATE lock.
  auto versions = [&] {
    return f.db.Scalar("SELECT string_agg(name || ':' || xmin || ctid || ':' || status || ':' || gpus_free, ' ' "
                       "ORDER BY name) FROM controllers");
  };
  f.db.Scalar("UPDATE controllers SET status = 'unhealthy', missed_health_checks = 2 WHERE name = 'a'");
  f.db.Scalar("UPDATE controllers SET status = 'offline', missed_health_checks = 9 WHERE name = 'b'");
  auto version_of_b = [&] { return f.db.Scalar("SELECT xmin::text || ctid::text || status FROM controllers WHERE name = 'b'"); };
  const std::string offline_b = version_of_b();
  record(1);
  const std::string first = versions();
  CHECK(absl::StrContains(first, ":healthy:1 "));  // a is back
  CHECK(version_of_b() == offline_b);              // b stays offline, untouched, until it heartbeats
  record(1);
  CHECK(versions() == first);
  record(0);
  CHECK(versions() != first);
  CHECK(f.db.Scalar("SELECT gpus_free FROM controllers WHERE name = 'a'") == "0");
}

}  // namespace gantry::api

namespace gantry::api {

TEST_CASE("a heartbeat queued behind a stuck write gives up at its own deadline, and the stuck one is answered once "
          "the write goes through",
          "[pg][registry]") {
  testing::StoreFixture f;
  const std::string a = f.RegisterController("a", 1), b = f.RegisterController("b", 1);
  auto beat = [](const std::string& id, const std::string& name) {
    v1::HeartbeatRequest r;
    r.set_controller_id(id);
    r.set_controller_token("token-" + name);
    return r;
  };
  // Another transaction holds a's row: the write that takes a's heartbeat waits on it.
  pqxx::connection other(f.db.dsn());
  auto holding = std::make_unique<pqxx::work>(other);
  holding->exec("SELECT 1 FROM controllers WHERE id = '" + a + "' FOR UPDATE");
  auto stuck = std::async(std::launch::async, [&] {
    return f.controllers.Heartbeat(beat(a, "a"), "a", absl::Seconds(30), absl::Seconds(1)).status();
  });
  REQUIRE(gantry::testing::WaitFor([&] {
    return f.db.Scalar("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'") == "1";
  }, absl::Seconds(10)));

  // b's heartbeat queues behind that write, and gives up at its deadline, not the write's.
  const absl::Time start = absl::Now();
  auto queued = f.controllers.Heartbeat(beat(b, "b"), "b", absl::Seconds(30), absl::Seconds(1),
                                        start + absl::Milliseconds(500));
  CHECK(queued.status().code() == absl::StatusCode::kUnavailable);
  CHECK(absl::StrContains(queued.status().message(), "did not answer in time"));
  CHECK(absl::Now() - start < absl::Seconds(2));
  CHECK(stuck.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);

  holding->commit();
  CHECK(stuck.get().ok());
  // Nothing of b's was left queued: its next heartbeat is written on its own.
  CHECK(f.controllers.Heartbeat(beat(b, "b"), "b", absl::Seconds(30), absl::Seconds(1), absl::Now() + absl::Seconds(5))
            .ok());
}

}  // namespace gantry::api
