#include "common/json_util.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"

namespace gantry {

namespace {

std::string Print(const google::protobuf::Message& message, bool with_defaults) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = with_defaults;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

}  // namespace

std::string ToJson(const google::protobuf::Message& message) { return Print(message, false); }

std::string ToJsonWithDefaults(const google::protobuf::Message& message) { return Print(message, true); }

absl::Status FromJson(const std::string& json, google::protobuf::Message* message) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto status = google::protobuf::util::JsonStringToMessage(json, message, options);
  if (!status.ok()) {
    return absl::InternalError(absl::StrCat("stored JSON does not parse: ", status.ToString()));
  }
  return absl::OkStatus();
}

std::string JsonString(const std::string& value) {
  google::protobuf::Value v;
  v.set_string_value(value);
  return ToJson(v);
}

std::string JsonStringArray(const std::vector<std::string>& values) {
  google::protobuf::ListValue list;
  for (const auto& v : values) list.add_values()->set_string_value(v);
  return ToJson(list);
}

absl::StatusOr<std::vector<std::string>> ParseJsonStringArray(const std::string& json) {
  google::protobuf::ListValue list;
  absl::Status s = FromJson(json, &list);
  if (!s.ok()) return s;
  std::vector<std::string> out;
  for (const auto& v : list.values()) out.push_back(v.string_value());
  return out;
}

std::string JsonStringMap(const google::protobuf::Map<std::string, std::string>& values) {
  google::protobuf::Struct object;
  for (const auto& [k, v] : values) (*object.mutable_fields())[k].set_string_value(v);
  return ToJson(object);
}

}  // namespace gantry
