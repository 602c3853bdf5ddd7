// How the binaries start: migrations only, a controller that comes up before the API server,
// and JSON logs that are valid JSON.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {

TEST_CASE("gantry-api --migrate-only applies the schema and exits", "[e2e]") {
  TempDir dir;
  TestDatabase db;
  Process migrate({BinaryPath("gantry-api"), "--migrate-only"},
                  {{"GANTRY_DATABASE_URL", db.dsn()}}, dir.Sub("migrate.log"));
  int status = migrate.Wait(absl::Seconds(20));
  INFO(migrate.Log());
  REQUIRE(status != -1);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(SourcePath("migrations"))) {
    files += entry.path().extension() == ".sql" ? 1 : 0;
  }
  CHECK(db.Scalar("SELECT count(*) FROM schema_migrations") == std::to_string(files));
  for (const char* table : {"controllers", "controller_tokens", "sessions", "session_events",
                            "templates", "api_keys"}) {
    CHECK(db.Scalar(absl::StrCat("SELECT to_regclass('", table, "')::text")) == table);
  }
}

TEST_CASE("gantry-api reads its options from a --config-file YAML file", "[e2e]") {
  TempDir dir;
  TestDatabase db;
  const std::string config = dir.Sub("api.yaml");
  std::ofstream(config) << "# gantry-api options, named like the flags\ndatabase-url: " << db.dsn()
                        << "\nmigrate-only: true\nlog-format: json\n";
  Process migrate({BinaryPath("gantry-api"), "--config-file", config}, {}, dir.Sub("migrate.log"));
  int status = migrate.Wait(absl::Seconds(20));
  INFO(migrate.Log());
  REQUIRE(status != -1);
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(db.Scalar("SELECT to_regclass('sessions')::text") == "sessions");
  CHECK(migrate.Log().rfind("{", 0) == 0);  // log-format: json took effect

  std::ofstream(config) << "database-url: " << db.dsn() << "\nmigrate-onyl: true\n";
  Process typo({BinaryPath("gantry-api"), "--config-file", config}, {}, dir.Sub("typo.log"));
  status = typo.Wait(absl::Seconds(20));
  CHECK(WEXITSTATUS(status) == 2);
  CHECK(typo.Log().find("unknown option \"migrate-onyl\"") != std::string::npos);
}

TEST_CASE("gantry-api refuses health-check settings that could never pass and sizes out of range, naming the flag",
          "[e2e]") {
  TempDir dir;
  TestDatabase db;
  struct Case {
    std::vector<std::string> flags;
    std::string named;
  };
  for (const Case& c : {Case{{"--health-check-timeout", "0s"}, "--health-check-timeout: more than 0"},
                        Case{{"--health-check-interval", "0s"}, "--health-check-interval: more than 0"},
                        Case{{"--unhealthy-after", "4", "--offline-after", "3"}, "--offline-after at least"},
                        Case{{"--db-pool-size", "0"}, "--db-pool-size: 1..1000"},
                        Case{{"--db-control-pool-size", "100000"}, "--db-control-pool-size: 1..100"},
                        Case{{"--max-message-bytes", "4294967296"}, "--max-message-bytes: 65536..1073741824"},
                        Case{{"--max-invoke-payload-bytes", "0"}, "--max-invoke-payload-bytes: 1..1073741824"}}) {
    std::vector<std::string> argv{BinaryPath("gantry-api"), "--listen", "127.0.0.1:0"};
    argv.insert(argv.end(), c.flags.begin(), c.flags.end());
    Process api(argv, {{"GANTRY_DATABASE_URL", db.dsn()}, {"GANTRY_JOIN_TOKEN", kJoinToken}},
                dir.Sub("api.log"));
    int status = api.Wait(absl::Seconds(20));
    INFO(api.Log());
    REQUIRE(status != -1);
    CHECK(WEXITSTATUS(status) == 2);
    CHECK(api.Log().find(c.named) != std::string::npos);
  }
}

// The daemon `argv` exits with the usage code, its log naming `named`.
static void CheckRefusesToStart(const std::vector<std::string>& argv, const std::string& named, TempDir& dir) {
  Process p(argv, {}, dir.Sub("daemon.log"));
  int status = p.Wait(absl::Seconds(20));
  INFO(p.Log());
  REQUIRE(status != -1);
  CHECK(WEXITSTATUS(status) == 2);
  CHECK(p.Log().find(named) != std::string::npos);
}

TEST_CASE("gantry-controller and gantry-worker refuse sizes out of range and a keeper they cannot run at start, naming "
          "the flag",
          "[e2e]") {
  TempDir dir;
  struct Case {
    std::vector<std::string> argv;
    std::string named;
  };
  const std::vector<std::string> controller{BinaryPath("gantry-controller"), "--name", "c1", "--join-token", kJoinToken};
  const std::vector<std::string> worker{BinaryPath("gantry-worker"), "--name", "w1", "--session-dir", dir.Sub("w1"),
                                        "--simulated-gpus", "1:Sim A100:40", "--sessions-as-worker-user"};
  auto with = [](std::vector<std::string> argv, std::initializer_list<std::string> more) {
    argv.insert(argv.end(), more);
    return argv;
  };
  // A keeper anyone may replace would run their code with the worker's privileges.
  const std::string open_keeper = dir.Sub("open-keeper");
  std::ofstream(open_keeper) << "#!/bin/sh\n";
  REQUIRE(chmod(open_keeper.c_str(), 0777) == 0);
  for (const Case& c : {Case{with(controller, {"--worker-missed-heartbeats", "0"}), "--worker-missed-heartbeats: 1..1000"},
                        Case{with(controller, {"--max-invoke-payload-bytes", "4294967296"}),
                             "--max-invoke-payload-bytes: 1..1073741824"},
                        Case{with(worker, {"--invoke-concurrency", "0"}), "--invoke-concurrency: 1..10000"},
                        Case{with(worker, {"--log-ring-bytes", "-1"}), "--log-ring-bytes: 4096..1073741824"},
                        Case{with(worker, {"--keeper", dir.Sub("no-such-keeper")}), "--keeper: cannot execute"},
                        Case{with(worker, {"--keeper", open_keeper}), "--keeper: " + open_keeper + " must be owned"}}) {
    CheckRefusesToStart(c.argv, c.named, dir);
  }
}

TEST_CASE("gantry-worker serves capabilities only through a handler user of their own, and says why not",
          "[e2e][security]") {
  TempDir dir;
  const std::string caps = dir.Sub("caps");
  std::ofstream(caps) << "demo/echo 1.0.0 exec cat\n";
  const std::vector<std::string> worker{BinaryPath("gantry-worker"), "--name",           "w1",
                                        "--session-dir",             dir.Sub("w1"),      "--simulated-gpus",
                                        "1:Sim A100:40",             "--capabilities",   caps,
                                        "--session-uids",            "200000-200999"};
  auto with = [](std::vector<std::string> argv, std::initializer_list<std::string> more) {
    argv.insert(argv.end(), more);
    return argv;
  };
  struct Case {
    std::vector<std::string> argv;
    std::string named;
  };
  for (const Case& c : {Case{worker, "--handler-user: required to serve capabilities"},
                        Case{with(worker, {"--handler-user", "0"}), "must be neither root"},
                        Case{with(worker, {"--handler-user", "200005"}), "nor a uid of --session-uids"},
                        Case{with(worker, {"--handler-user", "no-such-user-here"}), "no user \"no-such-user-here\""}}) {
    CheckRefusesToStart(c.argv, c.named, dir);
  }
}

TEST_CASE("a controller started before the API server registers once it is up", "[e2e]") {
  LocalFleet fleet;
  // Start the API on a port, stop it, then start the controller against that dead address.
  fleet.StartApi();
  std::string address = fleet.api_address();
  fleet.StopApi();
  std::string prefix = fleet.pki().Issue("controller", "early");
  Process controller({BinaryPath("gantry-controller"), "--name", "early", "--listen", "127.0.0.1:0",
                      "--api-url", address},
                     {{"GANTRY_TLS_CA", fleet.pki().ca()}, {"GANTRY_TLS_CERT", prefix + ".crt"},
                      {"GANTRY_TLS_KEY", prefix + ".key"}, {"GANTRY_JOIN_TOKEN", kJoinToken},
                      {"GRPC_DNS_RESOLVER", "native"}},
                     fleet.dir().Sub("early.log"));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  CHECK(controller.Alive());
  // The API server comes back on the same port (kernel-chosen ports are rarely reused at once,
  // so ask for it explicitly).
  std::string port = address.substr(address.rfind(':') + 1);
  Process api({BinaryPath("gantry-api"), "--listen", address},
              {{"GANTRY_DATABASE_URL", fleet.db().dsn()}, {"GANTRY_TLS_CA", fleet.pki().ca()},
               {"GANTRY_TLS_CERT", fleet.pki().dir() + "/api-server.crt"},
               {"GANTRY_TLS_KEY", fleet.pki().dir() + "/api-server.key"},
               {"GANTRY_JOIN_TOKEN", kJoinToken}, {"GRPC_DNS_RESOLVER", "native"}},
              fleet.dir().Sub("api2.log"));
  bool registered = WaitFor([&] {
    return fleet.db().Scalar("SELECT count(*) FROM controllers WHERE name = 'early'") == "1";
  }, absl::Seconds(20));
  INFO(controller.Log() << "\n" << api.Log());
  CHECK(registered);
}

TEST_CASE("JSON logs are one valid JSON object per line, whatever the message holds", "[e2e]") {
  TempDir dir;
  Pki pki(dir.Sub("pki"));
  pki.Issue("api-server");
  // libpq's connection errors span several lines and quote the host: all must stay escaped.
  Process api({BinaryPath("gantry-api"), "--log-format", "json", "--listen", "127.0.0.1:0",
               "--database-url", "host=127.0.0.1 port=1 user=we\\'ird connect_timeout=1"},
              {{"GANTRY_TLS_CA", pki.ca()}, {"GANTRY_TLS_CERT", pki.dir() + "/api-server.crt"},
               {"GANTRY_TLS_KEY", pki.dir() + "/api-server.key"},
               {"GANTRY_JOIN_TOKEN", "0123456789abcdef0123"}, {"GRPC_DNS_RESOLVER", "native"}},
              dir.Sub("api.log"));
  REQUIRE(WaitFor([&] { return api.Log().find("database not ready") != std::string::npos; },
                  absl::Seconds(10)));
  api.Signal(SIGTERM);
  REQUIRE(api.Wait(absl::Seconds(10)) != -1);
  INFO(api.Log());
  std::string check = absl::StrCat(
      "/usr/bin/python3 -c 'import json,sys\n"
      "lines=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]\n"
      "assert len(lines) >= 3, lines\n"
      "assert all(l[\"component\"] == \"gantry-api\" and l[\"msg\"] for l in lines)\n"
      "assert any(\"database not ready\" in l[\"msg\"] for l in lines)' ",
      dir.Sub("api.log"));
  CHECK(std::system(check.c_str()) == 0);
}

}  // namespace gantry::testing

namespace gantry::testing {

TEST_CASE("a request's log lines carry its request id from the API server to the controller", "[e2e]") {
  LocalFleet fleet;
  fleet.controller_env["GANTRY_LOG_FORMAT"] = "json";
  fleet.StartSingleNode("1");

  grpc::ClientContext ctx;
  ctx.AddMetadata("x-request-id", "trace-42");
  v1::CreateSessionRequest request;
  request.set_wait_for_running(true);
  *request.mutable_spec() = SleepSpec("408");
  v1::Session session;
  REQUIRE(fleet.AdminSessions()->CreateSession(&ctx, request, &session).ok());
  // The caller gets the id back, to quote when asking about the call.
  auto echoed = ctx.GetServerInitialMetadata().find("x-request-id");
  REQUIRE(echoed != ctx.GetServerInitialMetadata().end());
  CHECK(std::string(echoed->second.data(), echoed->second.size()) == "trace-42");

  // The controller's line about the placement names the request, the session and the worker.
  std::string placed;
  for (absl::string_view line : absl::StrSplit(fleet.controller().Log(), '\n')) {
    if (absl::StrContains(line, "placed on worker")) placed = std::string(line);
  }
  INFO(fleet.controller().Log());
  CHECK(placed.find("\"request_id\":\"trace-42\"") != std::string::npos);
  CHECK(placed.find(absl::StrCat("\"session_id\":\"", session.id(), "\"")) != std::string::npos);
  CHECK(placed.find("\"worker_id\":\"" + session.worker_id() + "\"") != std::string::npos);

  // An id that is not sane (too long, odd bytes) is replaced by a fresh one.
  grpc::ClientContext odd;
  odd.AddMetadata("x-request-id", std::string(100, 'x'));
  v1::GetSessionRequest get;
  get.set_id(session.id());
  v1::Session got;
  REQUIRE(fleet.AdminSessions()->GetSession(&odd, get, &got).ok());
  auto fresh = odd.GetServerInitialMetadata().find("x-request-id");
  REQUIRE(fresh != odd.GetServerInitialMetadata().end());
  CHECK(fresh->second.size() == 16);
}

}  // namespace gantry::testing
