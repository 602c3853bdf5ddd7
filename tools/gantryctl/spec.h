// Building requests from what the user typed: YAML or JSON files (protobuf's JSON field names
// or the proto's own), and the session-spec flags shared by `create` and `templates create`.
#pragma once

#include <google/protobuf/message.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gantry/v1/types.pb.h"
#include "tools/gantryctl/args.h"

namespace gantry::ctl {

// A file's text ("-" = stdin, which can be read only once).
absl::StatusOr<std::string> ReadInput(const std::string& path);
// Parses a YAML or JSON document into `message`; errors name `source`.
absl::Status ParseMessage(const std::string& text, const std::string& source, google::protobuf::Message* message);

// Adds every KEY=VALUE given for repeatable `flag` to `into`; INVALID_ARGUMENT names the flag.
absl::Status AddPairs(const Args& args, const std::string& flag, google::protobuf::Map<std::string, std::string>* into);

// Flags that describe a session: --gpus, --gpu-model, --cpu, --env K=V, ...
const std::vector<FlagSpec>& SpecFlags();
// Applies those flags (and the command, from `command` when not empty) over `spec`.
absl::Status ApplySpecFlags(const Args& args, const std::vector<std::string>& command, v1::SessionSpec* spec);

// "512Mi", "40Gi", "2G", "1048576" -> bytes; "500m", "2", "0.5" -> CPU millis.
absl::StatusOr<int64_t> ParseBytes(const std::string& text);
absl::StatusOr<int64_t> ParseCpuMillis(const std::string& text);

}  // namespace gantry::ctl
