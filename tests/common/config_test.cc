#include "common/config.h"

#include <catch2/catch.hpp>

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
