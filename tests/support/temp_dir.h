// A directory under /tmp for one test, removed with its contents when it goes out of scope.
// Header-only, so unit tests use it without the harness library (test_env.h).
#pragma once

#include <stdlib.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

namespace gantry::testing {

// The postgres user can enter it (tests run as root in CI).
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/gantry-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
    chmod(path_.c_str(), 0755);
  }
  // rm -rf rather than std::filesystem::remove_all, which stops at the first entry it cannot
  // remove (a test's process still writing there) and throws unless told not to.
  ~TempDir() {
    int rc = std::system(("rm -rf '" + path_ + "'").c_str());
    (void)rc;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace gantry::testing
