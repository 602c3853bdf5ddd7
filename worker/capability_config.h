// The capabilities a worker serves, from its --capabilities file: one per line,
//
//   NAME VERSION exec|persistent COMMAND [ARG...]
//
// separated by spaces (no quoting: wrap anything more in a script); '#' starts a comment.
// `exec` runs COMMAND once per request; `persistent` runs it once and speaks the framed
// protocol of docs/invoke-protocol.md with it.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gantry::worker {

struct CapabilityConfig {
  enum class Kind { kExec, kPersistent };
  std::string name;
  std::string version;
  Kind kind = Kind::kExec;
  std::vector<std::string> command;
};

// INVALID_ARGUMENT naming the line and what is wrong with it.
absl::StatusOr<std::vector<CapabilityConfig>> ParseCapabilities(absl::string_view text);

}  // namespace gantry::worker
