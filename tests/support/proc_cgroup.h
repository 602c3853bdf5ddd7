// Header-only, so that unit tests (which do not link the fleet support library) can use it too.
#pragma once

#include <sys/types.h>

#include <fstream>
#include <string>

namespace gantry::testing {

// The cgroup v2 path of a process ("/a/b"), from its "0::" line in /proc/PID/cgroup; "" if none.
inline std::string CgroupOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  }
  return "";
}

}  // namespace gantry::testing
