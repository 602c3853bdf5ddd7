// Typed configuration from flags, environment variables with the same names
// (--controller-url / GANTRY_CONTROLLER_URL) and an optional YAML file (--config-file /
// GANTRY_CONFIG_FILE, keys named like the flags: `controller-url: host:port`). Flags win over
// the environment, which wins over the file; every option has a default and a line of help,
// printed by --help.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace gantry {

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// Reads the real process environment.
std::optional<std::string> ProcessEnv(const std::string& name);

class Flags {
 public:
  Flags(std::string program, std::string summary);

  // Each Add* registers an option whose current value (the target's) is its default.
  // `alias_env` names an extra environment variable honoured after GANTRY_<NAME>.
  void AddString(const std::string& name, std::string* target, const std::string& help,
                 const std::string& alias_env = "");
  void AddInt(const std::string& name, int64_t* target, const std::string& help);
  void AddBool(const std::string& name, bool* target, const std::string& help);
  void AddDuration(const std::string& name, absl::Duration* target, const std::string& help);

  // INVALID_ARGUMENT naming the option on an unknown flag or a malformed value.
  absl::Status Parse(int argc, char** argv, const EnvLookup& env = ProcessEnv);

  // Applies a config file's YAML text (`source` names it in errors); Parse calls it for
  // --config-file. Public so the parser can be fuzzed without a file.
  absl::Status ApplyConfigText(const std::string& yaml, const std::string& source);

  bool help_requested() const { return help_requested_; }
  std::string Usage() const;
  // The environment variable that sets option `name`: GANTRY_ + upper-case, '-' -> '_'.
  static std::string EnvName(const std::string& name);

 private:
  enum class Kind { kString, kInt, kBool, kDuration };
  // The file's path from the command line or the environment ("" for none).
  std::string ConfigFilePath(int argc, char** argv, const EnvLookup& env) const;
  absl::Status ApplyConfigFile(const std::string& path);
  struct Option {
    std::string name;
    Kind kind;
    void* target;
    std::string help;
    std::string default_text;
    std::string alias_env;
  };
  absl::Status Set(Option& option, const std::string& value, const std::string& source);
  Option* Find(const std::string& name);

  std::string program_;
  std::string summary_;
  std::vector<Option> options_;
  bool help_requested_ = false;
};

}  // namespace gantry
