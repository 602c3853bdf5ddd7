// Output: aligned tables for people, JSON and YAML (protobuf's JSON mapping, so the same field
// names as grpcurl) for programs, and the small formatting helpers the tables use.
#pragma once

#include <google/protobuf/message.h>
#include <google/protobuf/timestamp.pb.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gantry/v1/types.pb.h"
#include "tools/gantryctl/cli.h"

namespace gantry::ctl {

absl::StatusOr<Format> ParseFormat(const std::string& text);

std::string ToJsonText(const google::protobuf::Message& message);  // pretty, ends with "\n"
std::string ToYamlText(const google::protobuf::Message& message);

// Prints `message` as JSON or YAML when that format was asked for; false otherwise.
bool PrintStructured(Format format, const google::protobuf::Message& message);

class Table {
 public:
  explicit Table(std::vector<std::string> header) : rows_{std::move(header)} {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  // Columns padded to their widest cell; `with_header` false prints rows only (watch updates).
  std::string Render(bool with_header = true) const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

std::string Age(const google::protobuf::Timestamp& since);  // "42s", "5m", "3h", "2d"; "-" if unset
std::string OrDash(const std::string& text);
std::string Bytes(int64_t bytes);  // "40Gi", "512Mi"

}  // namespace gantry::ctl
