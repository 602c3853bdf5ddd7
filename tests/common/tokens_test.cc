#include "common/tokens.h"

#include <catch2/catch.hpp>

#include <set>

namespace gantry {

TEST_CASE("random tokens carry at least 256 bits and do not repeat", "[tokens]") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string t = RandomToken(32);
    CHECK(t.size() == 43);  // 32 bytes in unpadded base64url.
    CHECK(t.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
          std::string::npos);
    CHECK(seen.insert(t).second);
  }
}

TEST_CASE("SHA-256 matches the standard test vectors", "[tokens]") {
  CHECK(Sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(Sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("constant-time comparison compares", "[tokens]") {
  CHECK(ConstantTimeEquals("secret-token", "secret-token"));
  CHECK_FALSE(ConstantTimeEquals("secret-token", "secret-tokeN"));
  CHECK_FALSE(ConstantTimeEquals("secret-token", "secret-token-longer"));
  CHECK_FALSE(ConstantTimeEquals("", "x"));
  CHECK(ConstantTimeEquals("", ""));
}

}  // namespace gantry
