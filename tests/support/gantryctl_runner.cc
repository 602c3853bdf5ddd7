#include "tests/support/gantryctl_runner.h"

#include <sys/wait.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace gantry::testing {

std::string ShellQuote(const std::string& word) {
  std::string q = "'";
  for (char c : word) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Gantryctl::Gantryctl(LocalFleet& fleet) : fleet_(fleet) {
  const std::string admin = fleet.pki().dir() + "/admin-ops";
  env = {{"GANTRY_ADDR", fleet.api_address()},
         {"GANTRY_CA", fleet.pki().ca()},
         {"GANTRY_CERT", admin + ".crt"},
         {"GANTRY_KEY", admin + ".key"}};
}

Ran Gantryctl::operator()(const std::vector<std::string>& args, const std::string& input) {
  const std::string base = fleet_.dir().Sub(absl::StrCat("ctl-", ++calls_));
  std::ofstream(base + ".in") << input;
  std::string command = absl::StrCat("env -i PATH=/usr/bin:/bin HOME=", ShellQuote(fleet_.dir().path()));
  for (const auto& [k, v] : env) absl::StrAppend(&command, " ", k, "=", ShellQuote(v));
  for (const auto& [k, v] : SanitizerOptions()) absl::StrAppend(&command, " ", k, "=", ShellQuote(v));
  absl::StrAppend(&command, " ", BinaryPath("gantryctl"));
  for (const std::string& a : args) absl::StrAppend(&command, " ", ShellQuote(a));
  absl::StrAppend(&command, " <", base, ".in >", base, ".out 2>", base, ".err");
  int status = std::system(command.c_str());
  Ran ran{WIFEXITED(status) ? WEXITSTATUS(status) : -1, Slurp(base + ".out"), Slurp(base + ".err")};
  UNSCOPED_INFO("gantryctl " << absl::StrJoin(args, " ") << " -> " << ran.code << "\nstdout: " << ran.out
                             << "\nstderr: " << ran.err);
  return ran;
}

std::unique_ptr<Process> Gantryctl::Start(const std::vector<std::string>& args, const std::string& log) {
  std::vector<std::string> argv = {BinaryPath("gantryctl")};
  argv.insert(argv.end(), args.begin(), args.end());
  auto full_env = env;
  full_env["PATH"] = "/usr/bin:/bin";
  return std::make_unique<Process>(argv, full_env, log);
}

}  // namespace gantry::testing
