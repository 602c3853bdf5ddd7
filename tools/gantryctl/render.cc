#include "tools/gantryctl/render.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/proto_time.h"

namespace gantry::ctl {

absl::StatusOr<Format> ParseFormat(const std::string& text) {
  if (text.empty() || text == "table") return Format::kTable;
  if (text == "wide") return Format::kWide;
  if (text == "json") return Format::kJson;
  if (text == "yaml") return Format::kYaml;
  if (text == "name") return Format::kName;
  return absl::InvalidArgumentError(absl::StrCat("--output: \"", text, "\" is not table, wide, json, yaml or name"));
}

std::string ToJsonText(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

namespace {

// YAML through google.protobuf.Value: the message's JSON mapping, re-read as a tree and
// emitted by yaml-cpp, so YAML and JSON always agree.
void Emit(YAML::Emitter& out, const google::protobuf::Value& value) {
  switch (value.kind_case()) {
    case google::protobuf::Value::kStructValue:
      out << YAML::BeginMap;
      {
        // Sorted keys: stable output regardless of map order.
        std::vector<std::string> keys;
        for (const auto& [k, v] : value.struct_value().fields()) keys.push_back(k);
        std::sort(keys.begin(), keys.end());
        for (const std::string& k : keys) {
          out << YAML::Key << k << YAML::Value;
          Emit(out, value.struct_value().fields().at(k));
        }
      }
      out << YAML::EndMap;
      break;
    case google::protobuf::Value::kListValue:
      out << YAML::BeginSeq;
      for (const auto& item : value.list_value().values()) Emit(out, item);
      out << YAML::EndSeq;
      break;
    case google::protobuf::Value::kNumberValue: {
      double n = value.number_value();
      if (n == std::floor(n) && std::fabs(n) < 1e15) {
        out << static_cast<int64_t>(n);
      } else {
        out << n;
      }
      break;
    }
    case google::protobuf::Value::kBoolValue:
      out << value.bool_value();
      break;
    case google::protobuf::Value::kStringValue:
      // Quoted when it would otherwise read back as another type ("8", "true", "null").
      out << (value.string_value().empty() ? YAML::DoubleQuoted : YAML::Auto) << value.string_value();
      break;
    default:
      out << YAML::Null;
  }
}

}  // namespace

std::string ToYamlText(const google::protobuf::Message& message) {
  google::protobuf::Value tree;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(message, &json);
  (void)google::protobuf::util::JsonStringToMessage(json, &tree);
  YAML::Emitter out;
  Emit(out, tree);
  return std::string(out.c_str()) + "\n";
}

bool PrintStructured(Format format, const google::protobuf::Message& message) {
  if (format == Format::kJson) {
    std::cout << ToJsonText(message) << std::flush;
  } else if (format == Format::kYaml) {
    std::cout << ToYamlText(message) << std::flush;
  } else {
    return false;
  }
  return true;
}

std::string Table::Render(bool with_header) const {
  std::vector<size_t> widths;
  for (const auto& row : rows_) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (size_t r = with_header ? 0 : 1; r < rows_.size(); ++r) {
    const auto& row = rows_[r];
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 3, ' ');
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

std::string Age(const google::protobuf::Timestamp& since) {
  if (since.seconds() == 0 && since.nanos() == 0) return "-";
  const int64_t s = std::max<int64_t>(0, absl::ToInt64Seconds(absl::Now() - FromProto(since)));
  if (s < 120) return absl::StrCat(s, "s");
  if (s < 7200) return absl::StrCat(s / 60, "m");
  if (s < 172800) return absl::StrCat(s / 3600, "h");
  return absl::StrCat(s / 86400, "d");
}

std::string OrDash(const std::string& text) { return text.empty() ? "-" : text; }

std::string Bytes(int64_t bytes) {
  static const char* const kUnits[] = {"", "Ki", "Mi", "Gi", "Ti"};
  int unit = 0;
  double value = static_cast<double>(bytes);
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, value == std::floor(value) ? "%.0f%s" : "%.1f%s", value, kUnits[unit]);
  return text;
}

}  // namespace gantry::ctl
