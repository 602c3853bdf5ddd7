#include "tools/bench/spawn_ceiling.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"

extern char** environ;

namespace gantry::bench {

double SpawnCeiling(int n) {
  std::vector<pid_t> children;
  std::string seconds = "3600";
  char* argv[] = {const_cast<char*>("/bin/sleep"), seconds.data(), nullptr};
  const absl::Time begin = absl::Now();
  for (int i = 0; i < n; ++i) {
    pid_t pid;
    if (posix_spawn(&pid, "/bin/sleep", nullptr, nullptr, argv, environ) == 0) children.push_back(pid);
  }
  const double rate = children.size() / absl::ToDoubleSeconds(absl::Now() - begin);
  for (pid_t pid : children) kill(pid, SIGKILL);
  for (pid_t pid : children) waitpid(pid, nullptr, 0);
  return rate;
}

}  // namespace gantry::bench
