// gantryctl's parsing, without a server: command-line flags, sizes, spec files and the order in
// which connection settings are taken.
#include <catch2/catch.hpp>

#include <fstream>
#include <map>

#include "tools/gantryctl/args.h"
#include "tools/gantryctl/cli.h"
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

TEST_CASE("gantryctl connection: flags, then --context, then environment, then the current context",
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
  vars["GANTRY_ADDR"] = "env:3";
  CHECK(resolve({})->address == "env:3");
  CHECK(resolve({})->ca_file == "a.crt");
  CHECK(resolve({"--context", "b"})->address == "b:2");
  CHECK(resolve({"--context", "b", "--addr", "flag:4"})->address == "flag:4");
  vars["GANTRY_CONTEXT"] = "b";
  vars.erase("GANTRY_ADDR");
  CHECK(resolve({})->cert_file == "b.crt");
  CHECK(resolve({"--context", "c"}).status().code() == absl::StatusCode::kNotFound);
  CHECK(resolve({"--cert", "only.crt", "--context", "a"}).status().code() == absl::StatusCode::kInvalidArgument);
  vars = {};
  CHECK(std::string(resolve({}).status().message()).find("no API server") == 0);
  std::remove(path.c_str());
}

}  // namespace gantry::ctl
