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
  std::vector<std::string> env;  // Extra "KEY=value" for the handler (e.g. GANTRY_MODEL_DIR).
};

// INVALID_ARGUMENT naming the line and what is wrong with it.
absl::StatusOr<std::vector<CapabilityConfig>> ParseCapabilities(absl::string_view text);

// --model-handler "exec|persistent COMMAND [ARG...]": every model directory becomes capability
// model/<name>, served by that handler with GANTRY_MODEL=<name> and GANTRY_MODEL_DIR=<its path>,
// at the version in the model's VERSION file (1.0.0 without one). Names already declared keep
// their declaration.
absl::StatusOr<std::vector<CapabilityConfig>> ModelCapabilities(absl::string_view handler,
                                                                const std::string& models_dir,
                                                                const std::vector<std::string>& model_names,
                                                                const std::vector<CapabilityConfig>& declared);

}  // namespace gantry::worker
