#include "worker/session_cgroups.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/support/proc_cgroup.h"

namespace gantry::worker {

TEST_CASE("cgroups off: nothing is created and the summary says limits are not enforced", "[worker]") {
  auto cg = SessionCgroups::Probe("off", "w1");
  CHECK_FALSE(cg.enabled());
  CHECK(cg.summary().find("NOT enforced") != std::string::npos);
  auto prepared = cg.Prepare("s1", {500, 1 << 20});
  REQUIRE(prepared.ok());
  CHECK(prepared->procs_fd == -1);
  CHECK(prepared->not_enforced.find("cpu_millis=500, memory_bytes=1048576 not enforced") == 0);
  CHECK(SessionCgroups::Probe("/nonexistent", "w1").summary().find("not a cgroup v2 directory") != std::string::npos);
}

// The real kernel interface: needs a writable cgroup v2 tree (root on most Linux hosts, as in
// CI). Where there is none, the test fails rather than passing unchecked.
TEST_CASE("cgroups: a session joins its own cgroup, which kills what it left behind", "[worker]") {
  auto cg = SessionCgroups::Probe("auto", "w1");
  INFO(cg.summary());
  if (!cg.enabled()) FAIL("cgroup v2 is not writable here, and this test checks the real tree: " << cg.summary());
  // Whatever is not enforced is named, with the reason.
  if (!cg.cpu_limits()) CHECK(cg.summary().find("CPU limits NOT enforced") != std::string::npos);
  if (!cg.memory_limits()) CHECK(cg.summary().find("memory limits NOT enforced") != std::string::npos);
  auto prepared = cg.Prepare("s1", {250, 64 << 20});
  REQUIRE(prepared.ok());
  REQUIRE(prepared->procs_fd >= 0);
  std::string dir = cg.parent() + "/s1";
  if (cg.memory_limits()) {
    std::ifstream max(dir + "/memory.max");
    std::string value;
    max >> value;
    CHECK(value == std::to_string(64 << 20));
  }
  if (cg.cpu_limits()) {
    std::ifstream max(dir + "/cpu.max");
    std::string quota, period;
    max >> quota >> period;
    CHECK(quota == "25000");
    CHECK(period == "100000");
  }
  CHECK(prepared->not_enforced.empty() == (cg.cpu_limits() && cg.memory_limits()));

  int fd = prepared->procs_fd;
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    if (write(fd, "0", 1) != 1) _exit(3);
    setsid();  // Out of every process group the worker knows: only the cgroup still holds it.
    pause();
    _exit(0);
  }
  close(fd);
  bool joined = false;
  for (int i = 0; i < 200 && !joined; ++i) {
    joined = absl::EndsWith(testing::CgroupOf(child), "/s1");
    if (!joined) usleep(10 * 1000);
  }
  CHECK(joined);
  cg.Remove("s1");
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  struct stat st;
  CHECK(stat(dir.c_str(), &st) != 0);
  cg.RemoveAll();
  CHECK(stat(cg.parent().c_str(), &st) != 0);
}

}  // namespace gantry::worker
