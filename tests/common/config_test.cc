#include "common/config.h"

#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <map>

namespace gantry {
namespace {

EnvLookup FakeEnv(std::map<std::string, std::string> values) {
  return [values](const std::string& name) -> std::optional<std::string> {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace

TEST_CASE("flags override GANTRY_* environment, which overrides defaults", "[config]") {
  std::string url = "default:1", name = "n";
  int64_t pool = 4;
  absl::Duration interval = absl::Seconds(5);
  bool only = false;
  Flags flags("t", "test");
  flags.AddString("database-url", &url, "db");
  flags.AddString("name", &name, "name");
  flags.AddInt("pool-size", &pool, "pool");
  flags.AddDuration("interval", &interval, "interval");
  flags.AddBool("migrate-only", &only, "only");
  const char* argv[] = {"t", "--name=flag-name", "--pool-size", "9", "--migrate-only"};
  auto status = flags.Parse(5, const_cast<char**>(argv),
                            FakeEnv({{"GANTRY_DATABASE_URL", "env:2"}, {"GANTRY_NAME", "env-name"},
                                     {"GANTRY_INTERVAL", "250ms"}}));
  REQUIRE(status.ok());
  CHECK(url == "env:2");
  CHECK(name == "flag-name");
  CHECK(pool == 9);
  CHECK(interval == absl::Milliseconds(250));
  CHECK(only);
}

TEST_CASE("an alias environment variable is honoured after the GANTRY_ one", "[config]") {
  std::string url;
  Flags flags("t", "test");
  flags.AddString("controller-url", &url, "controller", "CONTROLLER_URL");
  const char* argv[] = {"t"};
  REQUIRE(flags.Parse(1, const_cast<char**>(argv), FakeEnv({{"CONTROLLER_URL", "c:1"}})).ok());
  CHECK(url == "c:1");
  REQUIRE(flags.Parse(1, const_cast<char**>(argv),
                      FakeEnv({{"CONTROLLER_URL", "c:1"}, {"GANTRY_CONTROLLER_URL", "g:2"}})).ok());
  CHECK(url == "g:2");
}

TEST_CASE("bad flags and values are rejected naming the option", "[config]") {
  int64_t pool = 1;
  absl::Duration d;
  Flags flags("t", "test");
  flags.AddInt("pool-size", &pool, "pool");
  flags.AddDuration("interval", &d, "interval");
  const char* unknown[] = {"t", "--pool"};
  auto s = flags.Parse(2, const_cast<char**>(unknown), FakeEnv({}));
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(s.message()).find("--pool") != std::string::npos);
  const char* bad_int[] = {"t", "--pool-size=lots"};
  s = flags.Parse(2, const_cast<char**>(bad_int), FakeEnv({}));
  CHECK(std::string(s.message()).find("--pool-size") != std::string::npos);
  const char* none[] = {"t"};
  s = flags.Parse(1, const_cast<char**>(none), FakeEnv({{"GANTRY_INTERVAL", "-5s"}}));
  CHECK(std::string(s.message()).find("GANTRY_INTERVAL") != std::string::npos);
}

TEST_CASE("--help lists every option with its environment variable and default", "[config]") {
  std::string url = "127.0.0.1:7443";
  Flags flags("gantry-x", "does x");
  flags.AddString("api-url", &url, "where the API is");
  const char* argv[] = {"t", "--help"};
  REQUIRE(flags.Parse(2, const_cast<char**>(argv), FakeEnv({})).ok());
  CHECK(flags.help_requested());
  std::string usage = flags.Usage();
  CHECK(usage.find("--api-url") != std::string::npos);
  CHECK(usage.find("GANTRY_API_URL") != std::string::npos);
  CHECK(usage.find("127.0.0.1:7443") != std::string::npos);
}

}  // namespace gantry

namespace gantry {

TEST_CASE("a --config-file YAML file sets options, and the environment and flags override it", "[config]") {
  const std::string path = "/tmp/gantry_config_test.yaml";
  std::string url = "default", format = "text", name = "n";
  int64_t pool = 4;
  absl::Duration interval = absl::Seconds(5);
  auto make = [&](Flags& flags) {
    flags.AddString("database-url", &url, "db");
    flags.AddString("log-format", &format, "format");
    flags.AddString("name", &name, "name");
    flags.AddInt("pool-size", &pool, "pool");
    flags.AddDuration("interval", &interval, "interval");
  };
  std::ofstream(path) << "database-url: host=db port=5432\nlog-format: json\npool-size: 32\ninterval: 2s\nname: file\n";
  Flags flags("t", "test");
  make(flags);
  const char* argv[] = {"t", "--config-file", path.c_str(), "--name", "flag"};
  REQUIRE(flags.Parse(5, const_cast<char**>(argv), FakeEnv({{"GANTRY_POOL_SIZE", "8"}})).ok());
  CHECK(url == "host=db port=5432");
  CHECK(format == "json");
  CHECK(pool == 8);        // the environment over the file
  CHECK(name == "flag");   // the flag over the file
  CHECK(interval == absl::Seconds(2));

  // Also found through GANTRY_CONFIG_FILE; its errors name the file and the key.
  std::ofstream(path) << "pool-size: many\n";
  Flags from_env("t", "test");
  make(from_env);
  const char* bare[] = {"t"};
  auto bad_value = from_env.Parse(1, const_cast<char**>(bare), FakeEnv({{"GANTRY_CONFIG_FILE", path}}));
  CHECK(std::string(bad_value.message()) == path + ": pool-size: \"many\" is not an integer");
  std::ofstream(path) << "pool-sise: 3\n";
  Flags unknown("t", "test");
  make(unknown);
  auto typo = unknown.Parse(3, const_cast<char**>(argv), FakeEnv({}));
  CHECK(std::string(typo.message()) == path + ": unknown option \"pool-sise\" (see --help)");
  std::ofstream(path) << "name: [a, b]\n";
  Flags list("t", "test");
  make(list);
  CHECK_FALSE(list.Parse(3, const_cast<char**>(argv), FakeEnv({})).ok());
  // Found by fuzzing: a key that is not a name threw out of the parser.
  Flags odd_key("t", "test");
  make(odd_key);
  CHECK(odd_key.ApplyConfigText("{[a]: b}", "f.yaml").message() == "f.yaml: keys must be option names");
  Flags missing("t", "test");
  make(missing);
  const char* absent[] = {"t", "--config-file=/nonexistent/gantry.yaml"};
  CHECK(missing.Parse(2, const_cast<char**>(absent), FakeEnv({})).code() == absl::StatusCode::kInvalidArgument);
  CHECK(missing.Usage().find("--config-file") != std::string::npos);
  std::remove(path.c_str());
}

}  // namespace gantry
