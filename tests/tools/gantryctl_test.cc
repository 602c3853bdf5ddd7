// gantryctl's parsing, without a server: command-line flags, sizes, spec files and the order in
// which connection settings are taken.
#include <catch2/catch.hpp>

#include <fstream>
#include <map>

#include "tools/gantryctl/args.h"
#include "tools/gantryctl/cli.h"
#include "tools/gantryctl/config_file.h"
#include "tools/gantryctl/connection.h"
#include "tools/gantryctl/render.h"
#include "tools/gantryctl/spec.h"

namespace gantry::ctl {
namespace {

Args Parse(const std::vector<std::string>& words, size_t flags_end_after = 0, std::string* error = nullptr) {
  static const std::vector<FlagSpec> flags = {{"gpus", 0, true, "N", ""}, {"wait", 'w', false, "", ""},
                                              {"env", 0, true, "K=V", ""}};
  Args args;
  std::string e = ParseArgs(words, flags, flags_end_after, &args);
  if (error != nullptr) *error = e;
  return args;
}

}  // namespace

TEST_CASE("gantryctl args: long, short, joined and repeated flags, and where flags end", "[gantryctl]") {
  Args a = Parse({"--gpus", "2", "-w", "-ojson", "--env=A=1", "--env", "B=2", "x", "--gpus=3"});
  CHECK(a.Get("gpus") == "3");
  CHECK(a.Has("wait"));
  CHECK(a.Get("output") == "json");
  CHECK(a.All("env") == std::vector<std::string>{"A=1", "B=2"});
  CHECK(a.positional() == std::vector<std::string>{"x"});

  // After the first positional (the session's command), its own flags are not ours.
  Args cmd = Parse({"--gpus", "1", "python3", "-u", "serve.py", "--gpus", "9"}, 1);
  CHECK(cmd.Get("gpus") == "1");
  CHECK(cmd.positional() == std::vector<std::string>{"python3", "-u", "serve.py", "--gpus", "9"});
  CHECK(Parse({"--", "-x"}).positional() == std::vector<std::string>{"-x"});

  std::string error;
  Parse({"--nope"}, 0, &error);
  CHECK(error == "unknown flag --nope (see --help)");
  Parse({"--gpus"}, 0, &error);
  CHECK(error == "--gpus needs a value (N)");
  Parse({"--wait=yes"}, 0, &error);
  CHECK(error == "--wait takes no value");
}

TEST_CASE("gantryctl sizes and CPU amounts", "[gantryctl]") {
  CHECK(*ParseBytes("512Mi") == 512LL << 20);
  CHECK(*ParseBytes("40Gi") == 40LL << 30);
  CHECK(*ParseBytes("2G") == 2000000000LL);
  CHECK(*ParseBytes("1.5Ki") == 1536);
  CHECK(*ParseBytes("1048576") == 1048576);
  CHECK_FALSE(ParseBytes("lots").ok());
  CHECK_FALSE(ParseBytes("-1Gi").ok());
  CHECK(*ParseCpuMillis("500m") == 500);
  CHECK(*ParseCpuMillis("2") == 2000);
  CHECK(*ParseCpuMillis("0.25") == 250);
  CHECK_FALSE(ParseCpuMillis("fast").ok());
  CHECK(Bytes(40LL << 30) == "40Gi");
  CHECK(Bytes(1536) == "1.5Ki");
}

TEST_CASE("gantryctl spec files: YAML and JSON, typed by the proto, flags on top", "[gantryctl]") {
  v1::SessionSpec spec;
  REQUIRE(ParseMessage("command: [sleep, 10]\nenv: {PORT: 8080, DEBUG: 'true'}\n"
                       "resources: {gpus: {count: 2, min_memory_bytes: 1024}}\nidle_timeout: 600s\n",
                       "spec.yaml", &spec)
              .ok());
  CHECK(spec.command(1) == "10");
  CHECK(spec.env().at("PORT") == "8080");
  CHECK(spec.env().at("DEBUG") == "true");
  CHECK(spec.resources().gpus().count() == 2);
  CHECK(spec.resources().gpus().min_memory_bytes() == 1024);
  CHECK(spec.idle_timeout().seconds() == 600);
  v1::SessionSpec json;
  REQUIRE(ParseMessage(R"({"command": ["a"], "workingDir": "/tmp"})", "spec.json", &json).ok());
  CHECK(json.working_dir() == "/tmp");

  auto unknown = ParseMessage("commandz: [a]\n", "spec.yaml", &spec);
  CHECK(unknown.code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(unknown.message()).find("spec.yaml: not a SessionSpec") == 0);
  CHECK_FALSE(ParseMessage("- a\n- b\n", "list.yaml", &spec).ok());

  Args args;
  ParseArgs({"--gpus", "1", "--gpu-memory", "40Gi", "--cpu", "500m", "--env", "PORT=1", "--idle-timeout", "10m"},
            SpecFlags(), 0, &args);
  REQUIRE(ApplySpecFlags(args, {"serve"}, &spec).ok());
  CHECK(spec.command_size() == 1);
  CHECK(spec.resources().gpus().count() == 1);
  CHECK(spec.resources().gpus().min_memory_bytes() == 40LL << 30);
  CHECK(spec.resources().cpu_millis() == 500);
  CHECK(spec.env().at("PORT") == "1");
  CHECK(spec.env().at("DEBUG") == "true");  // kept from the file
  CHECK(spec.idle_timeout().seconds() == 600);
  Args bad;
  ParseArgs({"--env", "NOEQUALS"}, SpecFlags(), 0, &bad);
  CHECK(std::string(ApplySpecFlags(bad, {}, &spec).message()) == "--env: \"NOEQUALS\" is not KEY=VALUE");
}

TEST_CASE("gantryctl connection: a named context, else the environment, else the current context, each whole",
          "[gantryctl]") {
  const std::string path = "/tmp/gantryctl_test_config.yaml";
  std::ofstream(path) << "current-context: a\ncontexts:\n  a: {addr: 'a:1', ca: a.crt}\n"
                         "  b: {addr: 'b:2', ca: b.crt, cert: b.crt, key: b.key}\n";
  std::map<std::string, std::string> vars = {{"GANTRY_CONFIG", path}};
  Env env = [&](const std::string& name) { return vars.count(name) ? vars[name] : std::string(); };
  auto resolve = [&](const std::vector<std::string>& words) {
    Args args;
    REQUIRE(ParseArgs(words, {}, 0, &args).empty());
    return ResolveConnection(args, env);
  };
  CHECK(resolve({})->address == "a:1");
  // The environment is one source, used whole: nothing of the current context mixes in.
  vars["GANTRY_ADDR"] = "env:3";
  CHECK(resolve({})->address == "env:3");
  CHECK(resolve({})->ca_file == "");
  CHECK(resolve({"--context", "b"})->address == "b:2");
  CHECK(resolve({"--context", "b", "--addr", "flag:4"})->address == "flag:4");
  vars["GANTRY_CONTEXT"] = "b";  // names a context as --context does
  CHECK(resolve({})->cert_file == "b.crt");
  CHECK(resolve({})->address == "b:2");
  vars.erase("GANTRY_ADDR");
  CHECK(resolve({"--context", "c"}).status().code() == absl::StatusCode::kNotFound);
  CHECK(resolve({"--cert", "only.crt", "--context", "a"}).status().code() == absl::StatusCode::kInvalidArgument);
  vars = {};
  CHECK(std::string(resolve({}).status().message()).find("no API server") == 0);
  std::remove(path.c_str());
}

TEST_CASE("gantryctl connection: a context's credentials are never mixed with the environment's or with flags",
          "[gantryctl]") {
  const std::string path = "/tmp/gantryctl_test_mixing.yaml", admin_key = "/tmp/gantryctl_test_admin.key";
  std::ofstream(path) << "current-context: admin\ncontexts:\n  admin: {addr: 'h:1', ca: ca.crt, token-file: "
                      << admin_key << "}\n  alice-cert: {addr: 'h:1', ca: ca.crt, cert: alice.crt, key: alice.key}\n";
  std::ofstream(admin_key) << "admin-secret\n";
  // As after `source .gantry/client.env`: the admin's key and certificate in the environment.
  std::map<std::string, std::string> vars = {{"GANTRY_CONFIG", path}, {"GANTRY_ADDR", "h:1"},
                                             {"GANTRY_TOKEN", "admin-secret"}, {"GANTRY_CERT", "admin.crt"},
                                             {"GANTRY_KEY", "admin.key"}};
  Env env = [&](const std::string& name) { return vars.count(name) ? vars[name] : std::string(); };
  auto resolve = [&](const std::vector<std::string>& words) {
    Args args;
    REQUIRE(ParseArgs(words, {}, 0, &args).empty());
    return ResolveConnectionSources(args, env);
  };
  auto alice = resolve({"--context", "alice-cert"});
  REQUIRE(alice.ok());
  CHECK(alice->connection.token.empty());  // not the admin's key from GANTRY_TOKEN
  CHECK(alice->connection.cert_file == "alice.crt");
  CHECK(alice->sources.at("cert") == "context alice-cert");
  CHECK(alice->ignored.size() == 4);  // GANTRY_ADDR, _CERT, _KEY, _TOKEN, each said
  // A credential flag replaces every credential of the source it overrides.
  auto flagged = resolve({"--context", "alice-cert", "--token-file", admin_key});
  REQUIRE(flagged.ok());
  CHECK(flagged->connection.token == "admin-secret");
  CHECK(flagged->connection.cert_file.empty());
  CHECK(flagged->sources.at("token-file") == "--token-file");
  // The environment alone: its own credentials, both of them, and nothing from the file.
  auto from_env = resolve({});
  REQUIRE(from_env.ok());
  CHECK(from_env->context.empty());
  CHECK(from_env->connection.token == "admin-secret");
  CHECK(from_env->sources.at("token") == "GANTRY_TOKEN");
  // A key in the environment with no address there does not borrow the file's address.
  vars = {{"GANTRY_CONFIG", path}, {"GANTRY_TOKEN", "stray"}};
  Args none;
  CHECK(std::string(ResolveConnection(none, env).status().message()).find("no API server") == 0);
  std::remove(path.c_str());
  std::remove(admin_key.c_str());
}

TEST_CASE("gantryctl config file: unknown keys and kubeconfig-style lists are refused by name", "[gantryctl]") {
  auto error = [](const std::string& text) {
    auto parsed = ParseConfigFile(text, "c.yaml");
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
    return std::string(parsed.status().message());
  };
  CHECK(error("contexts:\n  a: {addr: 'h:1', token: secret}\n") ==
        "c.yaml: context \"a\": unknown key \"token\" (known: addr, ca, cert, key, token-file); an API key is not "
        "kept in the config file: put it in a file (mode 0600) and name that file with token-file");
  CHECK(error("contexts:\n  a: {address: 'h:1'}\n").find("unknown key \"address\"") != std::string::npos);
  CHECK(error("contexts:\n  a: {token_file: k}\n").find("did you mean token-file?") != std::string::npos);
  CHECK(error("contexts:\n  a: {tls: {ca: x}}\n").find("unknown key \"tls\"") != std::string::npos);
  CHECK(error("current-context: a\nusers: []\n") == "c.yaml: unknown key \"users\" (known: current-context, contexts)");
  CHECK(error("contexts:\n- name: a\n  context: {addr: 'h:1'}\n").find("contexts: is a list (as in a kubeconfig)") == 8);
  CHECK(error("contexts:\n  a: {addr: [h, 1]}\n") == "c.yaml: context \"a\": addr must be a single value");

  ConfigFile config;
  config.current_context = "b";
  config.contexts["a"] = {"h:1", "/ca.crt", "", "", "/a.key"};
  config.contexts["b"] = {"h:2", "/ca.crt", "/b.crt", "/b.key", ""};
  auto back = ParseConfigFile(RenderConfigFile(config), "rendered");
  REQUIRE(back.ok());
  CHECK(back->current_context == "b");
  CHECK(back->contexts.at("a").token_file == "/a.key");
  CHECK(back->contexts.at("b").cert == "/b.crt");
  CHECK(back->contexts.at("b").token_file.empty());
}

TEST_CASE("gantryctl durations: a bare number is refused with what to write instead", "[gantryctl]") {
  Args args;
  REQUIRE(ParseArgs({"--timeout", "5"}, {}, 0, &args).empty());
  absl::Duration d = absl::Seconds(30);
  CHECK(std::string(ParseDurationFlag(args, "timeout", &d).message()) ==
        "--timeout: \"5\" is not a duration (it needs a unit); write a number and a unit, such as 5s, 90s, 5m or 1h30m");
  CHECK(d == absl::Seconds(30));
  Args zero;
  REQUIRE(ParseArgs({"--timeout", "0s"}, {}, 0, &zero).empty());
  CHECK(std::string(ParseDurationFlag(zero, "timeout", &d).message()) == "--timeout: \"0s\" must be more than zero");
  Args good;
  REQUIRE(ParseArgs({"--timeout=1m30s"}, {}, 0, &good).empty());
  CHECK(ParseDurationFlag(good, "timeout", &d).ok());
  CHECK(d == absl::Seconds(90));
  CHECK(ParseDurationFlag(Args(), "timeout", &d).ok());  // absent: left as it was
}

TEST_CASE("gantryctl spec flags: GPU memory or model without a GPU count is refused", "[gantryctl]") {
  for (const char* flag : {"--gpu-memory", "--gpu-model"}) {
    Args args;
    REQUIRE(ParseArgs({flag, "40Gi"}, SpecFlags(), 0, &args).empty());
    v1::SessionSpec spec;
    auto status = ApplySpecFlags(args, {"serve"}, &spec);
    CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(status.message()) ==
          std::string(flag) + " describes the GPUs a session gets: give --gpus N too");
  }
}

}  // namespace gantry::ctl
