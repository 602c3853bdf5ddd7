// Small JSON conversions for values stored in jsonb columns, built on protobuf's JSON support
// (no hand-written parser).
#pragma once

#include <google/protobuf/map.h>
#include <google/protobuf/message.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace gantry {

std::string ToJson(const google::protobuf::Message& message);
// As ToJson, with fields at their defaults written too (0, false, ""): for clients that read
// the JSON with no schema, such as the HTTP gateway's.
std::string ToJsonWithDefaults(const google::protobuf::Message& message);
absl::Status FromJson(const std::string& json, google::protobuf::Message* message);

// `value` as a JSON string, quoted and escaped.
std::string JsonString(const std::string& value);
std::string JsonStringArray(const std::vector<std::string>& values);
absl::StatusOr<std::vector<std::string>> ParseJsonStringArray(const std::string& json);

std::string JsonStringMap(const google::protobuf::Map<std::string, std::string>& values);

}  // namespace gantry
