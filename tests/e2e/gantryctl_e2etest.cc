// gantryctl, the real binary, against a real local fleet: every command, its output formats,
// --wait, logs -f, list --watch, invoke with Ctrl-C, config contexts, completion, and the exit
// codes scripts rely on. After each refusal the database is checked for half-written rows.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/json_util.h"
#include "gantry/v1/admin_service.pb.h"
#include "gantry/v1/session_service.pb.h"
#include "tests/support/gantryctl_runner.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

std::string Write(LocalFleet& fleet, const std::string& name, const std::string& text) {
  std::string path = fleet.dir().Sub(name);
  std::ofstream(path) << text;
  return path;
}

v1::Session ParseSession(const std::string& json) {
  v1::Session s;
  REQUIRE(FromJson(json, &s).ok());
  return s;
}

std::string Phase(LocalFleet& fleet, const std::string& id) {
  return fleet.db().Scalar("SELECT phase FROM sessions WHERE id = '" + id + "'");
}

std::string Trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

int ExitCode(int wait_status) { return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1; }

}  // namespace

TEST_CASE("gantryctl: a session from create --wait to delete, in every output format", "[e2e][gantryctl]") {
  LocalFleet fleet;
  fleet.StartSingleNode("2");
  Gantryctl ctl(fleet);

  Ran created = ctl({"create", "--gpus", "1", "--wait", "-l", "app=ctl", "-o", "json", "--", "/bin/sh", "-c",
                     "echo line-one; echo line-two; sleep 300"});
  REQUIRE(created.code == 0);
  v1::Session s = ParseSession(created.out);
  CHECK(s.phase() == v1::SESSION_PHASE_RUNNING);
  CHECK(s.gpu_uuids_size() == 1);
  CHECK(absl::StartsWith(s.request_id(), "gantryctl-"));
  CHECK(Phase(fleet, s.id()) == "RUNNING");

  Ran got = ctl({"get", s.id(), "-o", "yaml"});
  CHECK(got.code == 0);
  CHECK(absl::StrContains(got.out, "phase: SESSION_PHASE_RUNNING"));
  CHECK(absl::StrContains(got.out, "id: " + s.id()));

  Ran table = ctl({"list"});
  CHECK(table.code == 0);
  CHECK(absl::StartsWith(table.out, "ID "));
  CHECK(absl::StrContains(table.out, s.id() + "   RUNNING   node1/w1   1 "));
  CHECK(Trim(ctl({"list", "-o", "name", "--phase", "running", "-l", "app=ctl"}).out) == s.id());
  CHECK(ctl({"list", "-o", "name", "--phase", "failed"}).out.empty());
  CHECK(Trim(ctl({"list", "-o", "name", "--controller", "node1", "-l", "app=ctl"}).out) == s.id());
  CHECK(ctl({"list", "--controller", "node-nowhere"}).code == 10 + grpc::StatusCode::NOT_FOUND);
  CHECK(absl::StrContains(ctl({"list", "-o", "wide"}).out, s.gpu_uuids(0)));
  Ran bad_phase = ctl({"list", "--phase", "sleeping"});
  CHECK(bad_phase.code == 2);  // a bad command line, found before any call
  CHECK(absl::StrContains(bad_phase.err, "--phase"));

  REQUIRE(WaitFor([&] { return ctl({"logs", s.id(), "--tail", "1"}).out == "line-two\n"; }, absl::Seconds(10)));
  CHECK(ctl({"logs", s.id()}).out == "line-one\nline-two\n");
  Ran metrics = ctl({"metrics", s.id(), "-o", "json"});
  CHECK(metrics.code == 0);
  CHECK(absl::StrContains(metrics.out, "\"sessionId\": \"" + s.id() + "\""));
  CHECK(absl::StrContains(ctl({"metrics", s.id()}).out, "GPU MEMORY"));

  Ran hibernated = ctl({"hibernate", s.id()});
  CHECK(hibernated.code == 0);
  CHECK(absl::StrContains(hibernated.out, "HIBERNATED"));
  CHECK(Phase(fleet, s.id()) == "HIBERNATED");
  CHECK(absl::StrContains(ctl({"wake", s.id()}).out, "RUNNING"));
  CHECK(Phase(fleet, s.id()) == "RUNNING");

  Ran deleted = ctl({"delete", s.id(), "-o", "name"});
  CHECK(deleted.code == 0);
  CHECK(Trim(deleted.out) == s.id());
  CHECK(WaitFor([&] { return Phase(fleet, s.id()) == "TERMINATED"; }, absl::Seconds(15)));

  // Refusals: distinct exit codes, the server's message, nothing written.
  const std::string rows_before = fleet.db().Scalar("SELECT count(*) FROM sessions");
  Ran missing = ctl({"get", "00000000-0000-0000-0000-000000000000"});
  CHECK(missing.code == 15);
  CHECK(absl::StartsWith(missing.err, "gantryctl: NOT_FOUND: "));
  Ran too_big = ctl({"create", "--gpus", "5", "sleep", "1.01"});
  CHECK(too_big.code == 18);
  CHECK(absl::StrContains(too_big.err, "RESOURCE_EXHAUSTED: spec.resources.gpus"));
  Ran not_a_count = ctl({"create", "--gpus", "lots", "sleep", "1.01"});
  CHECK(not_a_count.code == 2);
  CHECK(absl::StrContains(not_a_count.err, "--gpus"));
  Ran no_command = ctl({"create", "--gpus", "1"});
  CHECK(no_command.code == 13);
  CHECK(absl::StrContains(no_command.err, "spec.command"));
  CHECK(ctl({"create", "--bogus", "x"}).code == 2);
  CHECK(ctl({"logs"}).code == 2);
  CHECK(ctl({"frobnicate"}).code == 2);
  CHECK(fleet.db().Scalar("SELECT count(*) FROM sessions") == rows_before);
  CHECK(PidsWithCmdline("sleep 1.01").empty());
}

TEST_CASE("gantryctl: create from YAML and JSON files, and --wait reporting a FAILED session", "[e2e][gantryctl]") {
  LocalFleet fleet;
  fleet.StartSingleNode("1");
  Gantryctl ctl(fleet);

  // Plain numbers are fine for string fields (env) and number fields (count) alike.
  std::string yaml = Write(fleet, "spec.yaml",
                           "command: [/bin/sh, -c, 'echo \"port=$PORT\"; sleep 300']\n"
                           "env:\n  PORT: 8080\n"
                           "resources:\n  gpus: {count: 1}\n"
                           "labels: {from: yaml}\n");
  Ran from_yaml = ctl({"create", "-f", yaml, "--wait", "-o", "name"});
  REQUIRE(from_yaml.code == 0);
  const std::string id = Trim(from_yaml.out);
  CHECK(WaitFor([&] { return ctl({"logs", id}).out == "port=8080\n"; }, absl::Seconds(10)));
  CHECK(fleet.db().Scalar("SELECT spec->'labels'->>'from' FROM sessions WHERE id = '" + id + "'") == "yaml");

  // A whole CreateSessionRequest in JSON, with its own request_id: a second create is the same session.
  std::string json = Write(fleet, "request.json", R"({"requestId": "json-1", "spec": {"command": ["sleep", "301"]}})");
  Ran first = ctl({"create", "-f", json, "-o", "json"});
  REQUIRE(first.code == 0);
  Ran again = ctl({"create", "-f", json, "-o", "json"});
  REQUIRE(again.code == 0);
  CHECK(ParseSession(first.out).id() == ParseSession(again.out).id());
  CHECK(fleet.db().Scalar("SELECT count(*) FROM sessions WHERE request_id = 'json-1'") == "1");

  // Stdin, and flags over the file.
  Ran piped = ctl({"create", "-f", "-", "--env", "PORT=9090", "-o", "json"}, "command: [sleep, '302']\nenv: {PORT: 1}\n");
  REQUIRE(piped.code == 0);
  CHECK(ParseSession(piped.out).spec().env().at("PORT") == "9090");

  const std::string rows_before = fleet.db().Scalar("SELECT count(*) FROM sessions");
  Ran unknown_field = ctl({"create", "-f", Write(fleet, "bad.yaml", "command: [sleep, '1']\ngpuz: 1\n")});
  CHECK(unknown_field.code == 2);
  CHECK(absl::StrContains(unknown_field.err, "bad.yaml"));
  Ran not_yaml = ctl({"create", "-f", Write(fleet, "broken.yaml", "command: [sleep\n")});
  CHECK(not_yaml.code == 2);
  CHECK(absl::StrContains(not_yaml.err, "broken.yaml: neither YAML nor JSON"));
  CHECK(ctl({"create", "-f", fleet.dir().Sub("absent.yaml")}).code == 1);
  CHECK(fleet.db().Scalar("SELECT count(*) FROM sessions") == rows_before);

  Ran failing = ctl({"create", "--wait", "--", "/nonexistent/program"});
  CHECK(failing.code == 3);
  CHECK(absl::StrContains(failing.out, "FAILED"));
  CHECK(absl::StrContains(failing.err, "FAILED: could not start"));
  // Started, RUNNING for a moment, then FAILED: --wait reports the FAILED, not the moment.
  Ran exits_at_once = ctl({"create", "--wait", "--", "/bin/false"});
  CHECK(exits_at_once.code == 3);
  CHECK(absl::StrContains(exits_at_once.out, "FAILED"));
  CHECK(absl::StrContains(exits_at_once.err, "exited with code 1"));
  // One that ends well before it has been up for --stable-for is not reported as running either.
  Ran ends = ctl({"create", "--wait", "--stable-for", "30s", "--", "/bin/sh", "-c", "sleep 0.2"});
  CHECK(ends.code == 4);
  CHECK(absl::StrContains(ends.err, "before it had been up for 30s"));
}

TEST_CASE("gantryctl: invoke from an argument, a file and stdin, and Ctrl-C cancelling on the worker", "[e2e][gantryctl]") {
  LocalFleet fleet;
  fleet.StartApi();
  fleet.StartController();
  const std::string record = fleet.WritableFile("frames.log");  // The handler appends to it.
  std::string caps = Write(fleet, "caps.txt",
                           absl::StrCat("demo/echo 1.0.0 exec cat\n", "demo/tokens 1.0.0 persistent python3 ",
                                        fleet.ReadableCopy(SourcePath("tools/lib/demo_tokens.py")), " --delay-ms 100 --record ",
                                        record,
                                        "\n"));
  fleet.StartWorker("w1", "", 0, {"--capabilities", caps});
  REQUIRE(WaitFor([&] {
    return fleet.db().Scalar("SELECT count(*) FROM controllers WHERE capabilities @> '[{\"name\": \"demo/tokens\"}]'") == "1";
  }, absl::Seconds(20)));
  Gantryctl ctl(fleet);

  CHECK(ctl({"invoke", "demo/echo", "from an argument"}).out == "from an argument");
  CHECK(ctl({"invoke", "demo/echo", "-f", Write(fleet, "payload.bin", "from a file\n")}).out == "from a file\n");
  CHECK(ctl({"invoke", "demo/echo"}, "from stdin").out == "from stdin");
  CHECK(ctl({"invoke", "demo/tokens", "--version", "^1", "a b c"}).out == "a b c ");
  Ran missing = ctl({"invoke", "demo/absent", "x"});
  CHECK(missing.code == 15);
  CHECK(ctl({"invoke", "demo/echo", "--version", "^2", "x"}).code == 15);
  CHECK(ctl({"invoke", "demo/echo", "--meta", "novalue", "x"}).code == 2);

  // 100 words at 100 ms each: Ctrl-C after the first few ends gantryctl at once (exit 130) and
  // the handler is told to stop.
  std::string words;
  for (int i = 0; i < 100; ++i) absl::StrAppend(&words, "w", i, " ");
  const std::string out = fleet.dir().Sub("invoke.out");
  auto invoke = ctl.Start({"invoke", "demo/tokens", words}, out);
  REQUIRE(WaitFor([&] { return absl::StrContains(Slurp(out), "w2 "); }, absl::Seconds(20)));
  const absl::Time interrupted = absl::Now();
  invoke->Signal(SIGINT);
  const int status = invoke->Wait(absl::Seconds(5));
  CHECK(ExitCode(status) == 130);
  CHECK(absl::Now() - interrupted < absl::Seconds(2));
  CHECK(absl::StrContains(Slurp(out), "interrupted"));
  CHECK(WaitFor([&] { return absl::StrContains(Slurp(record), "CANCEL"); }, absl::Seconds(5)));
  CHECK_FALSE(absl::StrContains(Slurp(out), "w99"));
}

TEST_CASE("gantryctl: controllers, workers, cluster status, API keys, join tokens and templates", "[e2e][gantryctl]") {
  LocalFleet fleet;
  fleet.StartSingleNode("2");
  Gantryctl ctl(fleet);

  Ran controllers = ctl({"controllers", "list"});
  CHECK(controllers.code == 0);
  CHECK(absl::StrContains(controllers.out, "node1   HEALTHY   -         2/2 "));
  CHECK(absl::StrContains(ctl({"controllers", "get", "node1", "-o", "json"}).out, "\"name\": \"node1\""));
  CHECK(ctl({"controllers", "get", "node9"}).code == 15);

  CHECK(absl::StrContains(ctl({"controllers", "cordon", "node1"}).out, "HEALTHY,CORDONED"));
  CHECK(fleet.db().Scalar("SELECT cordoned FROM controllers WHERE name = 'node1'") == "t");
  CHECK(ctl({"create", "sleep", "303"}).code >= 10);  // nowhere to place it
  CHECK(ctl({"controllers", "uncordon", "node1"}).code == 0);
  CHECK(fleet.db().Scalar("SELECT cordoned FROM controllers WHERE name = 'node1'") == "f");

  Ran workers = ctl({"workers", "list"});
  CHECK(absl::StrContains(workers.out, "node1/w1   ONLINE   0/2 "));
  CHECK(absl::StrContains(ctl({"workers", "list", "--controller", "node1", "-o", "json"}).out, "\"workers\""));

  Ran session = ctl({"create", "--gpus", "1", "--wait", "-o", "name", "sleep", "304"});
  REQUIRE(session.code == 0);
  // GPUs in use reach the API server with the controller's next heartbeat.
  Ran status;
  CHECK(WaitFor([&] {
    status = ctl({"cluster", "status"});
    return absl::StrContains(status.out, "GPUs:         1/2 used\n");
  }, absl::Seconds(10)));
  CHECK(absl::StrContains(status.out, "Controllers:  1 healthy\n"));
  CHECK(absl::StrContains(status.out, "Workers:      1 online\n"));
  CHECK(absl::StrContains(status.out, "Sessions:     1 running\n"));

  Ran refused = ctl({"controllers", "delete", "node1"});
  CHECK(refused.code == 19);
  CHECK(fleet.db().Scalar("SELECT count(*) FROM controllers") == "1");
  // Drained: its session stopped as delete stops it, then nothing left to wait for.
  Ran drained = ctl({"controllers", "drain", "node1", "--wait"});
  CHECK(drained.code == 0);
  CHECK(absl::StrContains(drained.out, "controller node1 cordoned; 1 session(s) stopped, 0 still live\n"));
  CHECK(Phase(fleet, Trim(session.out)) == "TERMINATED");
  CHECK(ctl({"create", "sleep", "305"}).code >= 10);  // Cordoned: nowhere to place it.
  CHECK(ctl({"controllers", "uncordon", "node1"}).code == 0);
  Ran rotated = ctl({"controllers", "rotate-token", "node1"});
  CHECK(absl::StrContains(rotated.out, "new token"));
  CHECK(absl::StrContains(rotated.out, "the running controller uses it already"));

  // A user key: works for sessions, refused for admin calls, dead once revoked.
  Ran key = ctl({"apikeys", "create", "--principal", "alice", "--role", "user", "-o", "json"});
  REQUIRE(key.code == 0);
  v1::CreateApiKeyResponse created;
  REQUIRE(FromJson(key.out, &created).ok());
  Gantryctl alice(fleet);
  alice.env.erase("GANTRY_CERT");
  alice.env.erase("GANTRY_KEY");
  alice.env["GANTRY_TOKEN_FILE"] = Write(fleet, "alice.key", created.api_key() + "\n");
  CHECK(alice({"list"}).code == 0);
  Ran denied = alice({"controllers", "list"});
  CHECK(denied.code == 17);
  CHECK(absl::StrContains(denied.err, "PERMISSION_DENIED"));
  CHECK(ctl({"apikeys", "revoke", created.key_id()}).code == 0);
  CHECK(alice({"list"}).code == 26);
  CHECK(ctl({"apikeys", "create", "--role", "user"}).code == 13);  // no principal

  // A join token: shown once, listed with its uses and binding, revoked.
  Ran join = ctl({"jointokens", "create", "--role", "worker", "--name", "w9", "--ttl", "2h", "--max-uses", "3"});
  REQUIRE(join.code == 0);
  CHECK(absl::StrContains(join.out, "for:     worker w9, 3 certificate(s), until "));
  CHECK(absl::StrContains(join.out, "secret:  gantry_join_"));
  const std::string join_id = fleet.db().Scalar("SELECT id FROM join_tokens");
  Ran joins = ctl({"jointokens", "list"});
  CHECK(absl::StrContains(joins.out, join_id + "   worker   w9     0/3    usable"));
  CHECK(joins.out.find("gantry_join_") == std::string::npos);
  CHECK(ctl({"jointokens", "revoke", join_id}).code == 0);
  CHECK(absl::StrContains(ctl({"jointokens", "list"}).out, "0/3    revoked"));
  CHECK(ctl({"jointokens", "create", "--role", "admin"}).code == 13);
  CHECK(ctl({"jointokens", "create", "--role", "worker", "--max-uses", "0"}).code == 2);

  Ran tmpl = ctl({"templates", "create", "one-gpu", "--gpus", "1", "--description", "one GPU", "--", "sleep", "305"});
  CHECK(tmpl.code == 0);
  CHECK(absl::StrContains(ctl({"templates", "list"}).out, "one-gpu   1 "));
  Ran from_template = ctl({"create", "-t", "one-gpu", "--wait", "-o", "json"});
  REQUIRE(from_template.code == 0);
  CHECK(ParseSession(from_template.out).spec().command(1) == "305");
  CHECK(ctl({"templates", "delete", "one-gpu"}).code == 0);
  CHECK(ctl({"templates", "list", "-o", "name"}).out.empty());
}

TEST_CASE("gantryctl: config contexts, connection precedence and bash completion", "[e2e][gantryctl]") {
  LocalFleet fleet;
  fleet.StartSingleNode("1");
  Gantryctl ctl(fleet);
  const std::string admin = fleet.pki().dir() + "/admin-ops";
  const std::string config = Write(fleet, "config.yaml",
                                   absl::StrCat("current-context: broken\n", "contexts:\n",
                                                "  broken: {addr: '127.0.0.1:1', ca: ", fleet.pki().ca(), "}\n",
                                                "  good:\n    addr: ", fleet.api_address(), "\n    ca: ",
                                                fleet.pki().ca(), "\n    cert: ", admin, ".crt\n    key: ", admin,
                                                ".key\n"));
  Gantryctl from_file(fleet);
  from_file.env = {{"GANTRY_CONFIG", config}};
  CHECK(from_file({"list", "--timeout", "3s"}).code >= 10);  // the current context points nowhere
  CHECK(from_file({"--context", "good", "list"}).code == 0);
  Ran contexts = from_file({"config", "get-contexts"});
  CHECK(absl::StrContains(contexts.out, "*         broken"));
  CHECK(from_file({"config", "use-context", "good"}).code == 0);
  CHECK(from_file({"list"}).code == 0);
  CHECK(from_file({"config", "use-context", "nowhere"}).code == 1);
  // --context wins over the environment; the environment over the current context.
  from_file.env["GANTRY_ADDR"] = "127.0.0.1:1";
  CHECK(from_file({"list", "--timeout", "3s"}).code >= 10);
  CHECK(from_file({"--context", "good", "list"}).code == 0);

  Gantryctl nothing(fleet);
  nothing.env.clear();
  Ran unconfigured = nothing({"list"});
  CHECK(unconfigured.code == 1);
  CHECK(absl::StrContains(unconfigured.err, "no API server"));

  CHECK(absl::StrContains(ctl({"completion", "bash"}).out, "complete -o default -F _gantryctl gantryctl"));
  Ran top = ctl({"__complete"});
  CHECK(absl::StrContains(top.out, "controllers\n"));
  CHECK(absl::StrContains(top.out, "invoke\n"));
  CHECK(absl::StrContains(ctl({"__complete", "controllers"}).out, "rotate-token\n"));
  CHECK(absl::StrContains(ctl({"__complete", "list", "-o"}).out, "yaml\n"));
  Ran session = ctl({"create", "-o", "name", "sleep", "306"});
  REQUIRE(session.code == 0);
  Ran ids = ctl({"__complete", "logs"});
  CHECK(absl::StrContains(ids.out, "--follow\n"));
  CHECK(absl::StrContains(ids.out, Trim(session.out) + "\n"));
  CHECK(absl::StrContains(ctl({"--help"}).out, "controllers rotate-token"));
  CHECK(absl::StrContains(ctl({"invoke", "--help"}).out, "Ctrl-C cancels"));
}

TEST_CASE("gantryctl: a context's credentials are used whole, never mixed with the environment's", "[e2e][gantryctl]") {
  LocalFleet fleet;
  fleet.StartSingleNode("1");
  const std::string alice = fleet.pki().Issue("user", "alice");
  const std::string admin_key = Write(fleet, "admin.key", std::string(kAdminKey) + "\n");
  const std::string config = fleet.dir().Sub("gantry/config.yaml");  // its directory does not exist yet
  // As after `source .gantry/client.env`: the admin's address, CA and API key in the environment.
  Gantryctl ctl(fleet);
  ctl.env = {{"GANTRY_CONFIG", config}, {"GANTRY_ADDR", fleet.api_address()}, {"GANTRY_CA", fleet.pki().ca()},
             {"GANTRY_TOKEN", kAdminKey}};
  Ran made = ctl({"config", "set-context", "alice-cert", "--addr", fleet.api_address(), "--ca", fleet.pki().ca(),
                  "--cert", alice + ".crt", "--key", alice + ".key"});
  REQUIRE(made.code == 0);
  CHECK(absl::StrContains(made.out, "context \"alice-cert\" created"));
  REQUIRE(ctl({"config", "set-context", "admin", "--addr", fleet.api_address(), "--ca", fleet.pki().ca(),
               "--token-file", admin_key})
              .code == 0);
  struct stat st;
  REQUIRE(stat(config.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  // The named context runs as alice, whatever GANTRY_TOKEN says.
  Ran created = ctl({"--context", "alice-cert", "create", "-o", "json", "--", "sleep", "307"});
  REQUIRE(created.code == 0);
  CHECK(ParseSession(created.out).owner() == "user/alice");
  Ran view = ctl({"--context", "alice-cert", "config", "view"});
  CHECK(absl::StrContains(view.out, "cert:        " + alice + ".crt  (context alice-cert)"));
  CHECK(absl::StrContains(view.out, "api key:     -"));
  CHECK(absl::StrContains(view.out, "ignored:     GANTRY_TOKEN (the context alice-cert named by --context is used whole)"));
  CHECK_FALSE(absl::StrContains(view.out, kAdminKey));
  // The environment alone is the admin; a context's own API key file makes it the admin too.
  CHECK(ParseSession(ctl({"create", "-o", "json", "--", "sleep", "308"}).out).owner() == "admin/bootstrap");
  CHECK(absl::StrContains(ctl({"--context", "admin", "config", "view"}).out, "api key:     read from " + admin_key));
  // The first context made became the current one; use-context switches, and it shows.
  Ran listed = ctl({"config", "get-contexts"});
  CHECK(absl::StrContains(listed.out, "*         alice-cert"));
  // With GANTRY_* set (as client.env does) the current context is not what commands use: said.
  Ran switched = ctl({"config", "use-context", "admin"});
  CHECK(switched.code == 0);
  CHECK(absl::StrContains(switched.err, "note: not in this shell: GANTRY_ADDR, GANTRY_CA, GANTRY_TOKEN are set, so "
                                        "commands use the environment instead (unset them, or pass --context)"));
  Ran listed_again = ctl({"config", "get-contexts"});
  CHECK(absl::StrContains(listed_again.out, "*         admin"));
  CHECK(absl::StrContains(listed_again.err, "note: the current context is not in use here"));

  // Keys gantryctl does not know are errors that name them; nothing runs with half a config.
  Gantryctl strict(fleet);
  strict.env = {{"GANTRY_CONFIG", Write(fleet, "typo.yaml", absl::StrCat("current-context: a\ncontexts:\n  a: {addr: '",
                                                                           fleet.api_address(), "', token: x}\n"))}};
  Ran typo = strict({"list"});
  CHECK(typo.code == 1);
  CHECK(absl::StrContains(typo.err, "context \"a\": unknown key \"token\" (known: addr, ca, cert, key, token-file)"));
  strict.env = {{"GANTRY_CONFIG", Write(fleet, "kube.yaml", "contexts:\n- name: a\n  context: {addr: 'h:1'}\n")}};
  CHECK(absl::StrContains(strict({"config", "get-contexts"}).err, "contexts: is a list (as in a kubeconfig)"));
}

TEST_CASE("gantryctl: refusals say what to do, on stderr only, with the documented exit codes", "[e2e][gantryctl]") {
  LocalFleet fleet;
  fleet.StartSingleNode("1");
  Gantryctl ctl(fleet);
  const std::string rows_before = fleet.db().Scalar("SELECT count(*) FROM sessions");

  // No CA: the system's trust store cannot verify the cluster's certificate. No gRPC log line.
  Gantryctl no_ca(fleet);
  no_ca.env.erase("GANTRY_CA");
  Ran untrusted = no_ca({"list"});
  CHECK(untrusted.code == 24);
  CHECK(untrusted.out.empty());
  CHECK(absl::StrContains(untrusted.err, "set the cluster's CA with --ca, GANTRY_CA, or ca: in the context"));
  CHECK_FALSE(absl::StrContains(untrusted.err, "ssl_transport_security"));
  CHECK(absl::StartsWith(untrusted.err, "gantryctl: UNAVAILABLE: "));

  Ran bogus = ctl({"list", "--phase", "bogus"});
  CHECK(bogus.code == 2);
  CHECK(bogus.out.empty());
  CHECK(absl::StrContains(bogus.err, "--phase: \"bogus\" is not one of pending"));
  Ran bare = ctl({"invoke", "demo/echo", "--deadline", "5"}, "x");
  CHECK(bare.code == 2);
  CHECK(absl::StrContains(bare.err, "--deadline: \"5\" is not a duration (it needs a unit)"));
  Ran no_gpu = ctl({"create", "--gpu-memory", "40G", "--", "sleep", "1"});
  CHECK(no_gpu.code == 2);
  CHECK(absl::StrContains(no_gpu.err, "--gpu-memory describes the GPUs a session gets: give --gpus N too"));
  Ran missing = ctl({"delete", "00000000-0000-0000-0000-000000000000"});
  CHECK(missing.code == 15);
  CHECK(missing.out.empty());  // no empty table before the error
  Ran too_many = ctl({"create", "--gpus", "2", "--", "sleep", "1"});
  CHECK(too_many.code == 18);
  CHECK(absl::StrContains(too_many.err, "asked for 2 GPU(s); only 1 of the 1 GPU(s) on the fleet's 1 healthy"));
  CHECK(fleet.db().Scalar("SELECT count(*) FROM sessions") == rows_before);
}

TEST_CASE("gantryctl: logs -f follows to the end and list --watch prints each change", "[e2e][gantryctl]") {
  LocalFleet fleet;
  fleet.StartSingleNode("1");
  Gantryctl ctl(fleet);

  const std::string watch_log = fleet.dir().Sub("watch.out");
  auto watch = ctl.Start({"list", "--watch", "--interval", "200ms"}, watch_log);
  const bool listed = WaitFor([&] { return absl::StartsWith(Slurp(watch_log), "ID "); }, absl::Seconds(10));
  INFO("gantryctl list --watch printed: " << Slurp(watch_log));
  REQUIRE(listed);

  Ran created = ctl({"create", "-o", "name", "--", "/bin/sh", "-c",
                     "for i in 1 2 3 4 5; do echo tick-$i; sleep 0.3; done"});
  REQUIRE(created.code == 0);
  const std::string id = Trim(created.out);
  const std::string follow_log = fleet.dir().Sub("follow.out");
  auto follow = ctl.Start({"logs", "-f", id}, follow_log);
  CHECK(ExitCode(follow->Wait(absl::Seconds(20))) == 0);
  CHECK(Slurp(follow_log) == "tick-1\ntick-2\ntick-3\ntick-4\ntick-5\n");

  // The watch printed the session running and then ended, one line per change.
  REQUIRE(WaitFor([&] {
    std::string text = Slurp(watch_log);
    return absl::StrContains(text, id + "   RUNNING") && absl::StrContains(text, id + "   TERMINATED");
  }, absl::Seconds(10)));
  CHECK(absl::StrContains(Slurp(watch_log).substr(1), "\nID ") == false);  // one header only
  watch->Signal(SIGINT);
  CHECK(ExitCode(watch->Wait(absl::Seconds(5))) == 130);
}

}  // namespace gantry::testing
