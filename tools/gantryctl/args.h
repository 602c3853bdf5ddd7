// Command-line parsing for gantryctl: commands of one or two words ("get", "controllers list"),
// each with its own flags, plus the global connection and output flags every command takes.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace gantry::ctl {

struct FlagSpec {
  std::string name;        // long form, without "--"
  char short_name = 0;     // e.g. 'o' for -o; 0 for none
  bool takes_value = true; // false: a switch (--wait)
  std::string value_name;  // shown in help: --gpus N
  std::string help;
};

// The flags and positional arguments given to one command.
class Args {
 public:
  bool Has(const std::string& flag) const { return values_.count(flag) > 0; }
  // The last value given for `flag`, or `fallback`.
  std::string Get(const std::string& flag, const std::string& fallback = "") const;
  // Every value given for a repeatable flag, in order.
  std::vector<std::string> All(const std::string& flag) const;
  const std::vector<std::string>& positional() const { return positional_; }

  void Add(const std::string& flag, std::string value) { values_[flag].push_back(std::move(value)); }
  void AddPositional(std::string value) { positional_.push_back(std::move(value)); }

 private:
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
};

// The flags every command accepts (connection, output, timeout, help).
const std::vector<FlagSpec>& GlobalFlags();

// Parses `words` (argv without the program and the command words) against `flags` and the
// global ones. "--name=value", "--name value", "-o json" and "--" are understood. Once
// `flags_end_after` positional arguments are seen (0: never), the rest are positional too, so
// `gantryctl create python3 -u serve.py` passes -u to python3. Returns an error message naming
// the bad flag, or "".
std::string ParseArgs(const std::vector<std::string>& words, const std::vector<FlagSpec>& flags,
                      size_t flags_end_after, Args* out);

// The duration `flag` was given (left as it is when absent): INVALID_ARGUMENT naming the flag,
// the value and what a duration looks like when it is not one (a bare "5" has no unit), or when
// it is not positive and must be.
absl::Status ParseDurationFlag(const Args& args, const std::string& flag, absl::Duration* out,
                               bool must_be_positive = true);

// "--gpus N      help" lines for a help screen.
std::string FlagHelp(const std::vector<FlagSpec>& flags);

}  // namespace gantry::ctl
