#include "common/semver.h"

#include <catch2/catch.hpp>

namespace gantry {

TEST_CASE("version ranges match as npm and cargo users expect", "[semver]") {
  auto m = [](const char* range, const char* version) {
    auto r = SemVerRange::Parse(range);
    REQUIRE(r.ok());
    return r->Matches(absl::string_view(version));
  };
  CHECK(m("", "0.0.1"));
  CHECK(m("*", "9.9.9"));
  CHECK(m("1.4.0", "1.4.0"));
  CHECK_FALSE(m("1.4.0", "1.4.1"));
  CHECK(m("1.4", "1.4.7"));
  CHECK_FALSE(m("1.4", "1.5.0"));
  CHECK(m("^1.2", "1.2.0"));
  CHECK(m("^1.2", "1.9.3"));
  CHECK_FALSE(m("^1.2", "1.1.9"));
  CHECK_FALSE(m("^1.2", "2.0.0"));
  CHECK(m("^0.2.3", "0.2.9"));
  CHECK_FALSE(m("^0.2.3", "0.3.0"));
  CHECK(m("^0.0.3", "0.0.3"));
  CHECK_FALSE(m("^0.0.3", "0.0.4"));
  CHECK(m("~1.2", "1.2.9"));
  CHECK_FALSE(m("~1.2", "1.3.0"));
  CHECK(m(">=1.2 <2", "1.9.0"));
  CHECK_FALSE(m(">=1.2 <2", "2.0.0"));
  CHECK(m(">1.2.3", "1.2.4"));
  CHECK(m("<=1.2", "1.2.0"));
  CHECK_FALSE(m("^1", "banana"));
}

TEST_CASE("malformed versions and ranges are refused with a reason", "[semver]") {
  const std::string too_long(200, '1');
  for (const char* bad : {"^", "1..2", "v1", "1.2.3.4", "^1.2-beta", ">=x", "1.-2", too_long.c_str()}) {
    auto r = SemVerRange::Parse(bad);
    INFO(bad);
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  }
  CHECK(ParseSemVer("1.2.3").ok());
  CHECK_FALSE(ParseSemVer("").ok());
}

}  // namespace gantry
