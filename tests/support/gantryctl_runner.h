// Runs the real gantryctl binary against a LocalFleet, as an admin (the fleet's admin-ops
// certificate) unless the test changes `env`: for tests of what an operator sees.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/local_fleet.h"

namespace gantry::testing {

struct Ran {
  int code = -1;
  std::string out;
  std::string err;
};

std::string ShellQuote(const std::string& word);
std::string Slurp(const std::string& path);

// Runs gantryctl with exactly `env` (plus PATH, HOME and the sanitizers' settings), stdin from `input`.
class Gantryctl {
 public:
  explicit Gantryctl(LocalFleet& fleet);

  Ran operator()(const std::vector<std::string>& args, const std::string& input = "");
  // The same, as a long-running Process (logs -f, list --watch, invoke to interrupt).
  std::unique_ptr<Process> Start(const std::vector<std::string>& args, const std::string& log);

  std::map<std::string, std::string> env;

 private:
  LocalFleet& fleet_;
  int calls_ = 0;
};

}  // namespace gantry::testing
