// The worker's log janitor on a real directory: which session logs it removes (ended, past the
// retention; then the oldest ended while over the budget) and which it never touches (running
// sessions', just-written ones, anything that is not a session log).
#include "worker/log_janitor.h"

#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <fstream>
#include <set>

#include "absl/time/clock.h"
#include "tests/support/temp_dir.h"

namespace gantry::worker {
namespace {

// A file of `bytes` bytes, last written `age` ago.
void File(const std::string& path, size_t bytes, absl::Duration age) {
  std::ofstream(path) << std::string(bytes, 'x');
  const timeval when = absl::ToTimeval(absl::Now() - age);
  const timeval times[2] = {when, when};
  REQUIRE(utimes(path.c_str(), times) == 0);
}

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

const std::string kRunning = "11111111-1111-1111-1111-111111111111";
const std::string kOld = "22222222-2222-2222-2222-222222222222";
const std::string kOlder = "33333333-3333-3333-3333-333333333333";
const std::string kRecent = "44444444-4444-4444-4444-444444444444";
const std::string kFresh = "55555555-5555-5555-5555-555555555555";

}  // namespace

TEST_CASE("log janitor: ended logs go after the retention, then oldest first while over the budget", "[worker]") {
  testing::TempDir scratch;
  const std::string& dir = scratch.path();
  File(dir + "/" + kRunning + ".log", 1000, absl::Hours(50));  // Running: never removed.
  File(dir + "/" + kOld + ".log", 1000, absl::Hours(30));
  File(dir + "/" + kOld + ".log.1", 1000, absl::Hours(30));
  File(dir + "/" + kOlder + ".log", 1000, absl::Hours(3));
  File(dir + "/" + kRecent + ".log", 1000, absl::Hours(2));
  File(dir + "/" + kFresh + ".log", 1000, absl::Seconds(1));  // Just written: may be starting.
  File(dir + "/notes.log", 1000, absl::Hours(100));            // Not a session's.
  REQUIRE(mkdir((dir + "/" + kOld).c_str(), 0700) == 0);      // A session home, not a log.
  const std::set<std::string> running = {kRunning};
  auto is_running = [&](const std::string& id) { return running.count(id) > 0; };

  LogRetention retention;  // 24 h, 10 GiB.
  LogJanitor roomy(dir, retention, is_running);
  CHECK(roomy.SweepOnce() == 1);
  CHECK_FALSE(Exists(dir + "/" + kOld + ".log"));
  CHECK_FALSE(Exists(dir + "/" + kOld + ".log.1"));
  CHECK(Exists(dir + "/" + kOld));
  for (const auto& id : {kRunning, kOlder, kRecent, kFresh}) CHECK(Exists(dir + "/" + id + ".log"));

  // 4,000 bytes left in session logs, a budget of 2,500: the oldest ended go until under it.
  retention.budget_bytes = 2500;
  LogJanitor tight(dir, retention, is_running);
  CHECK(tight.SweepOnce() == 2);
  CHECK_FALSE(Exists(dir + "/" + kOlder + ".log"));
  CHECK_FALSE(Exists(dir + "/" + kRecent + ".log"));
  CHECK(Exists(dir + "/" + kRunning + ".log"));
  CHECK(Exists(dir + "/" + kFresh + ".log"));
  CHECK(Exists(dir + "/notes.log"));
}

}  // namespace gantry::worker
