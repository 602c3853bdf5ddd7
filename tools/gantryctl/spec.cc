#include "tools/gantryctl/spec.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"

namespace gantry::ctl {
namespace {

// A YAML tree as google.protobuf.Value. Plain scalars stay strings (protobuf's JSON parser
// takes "8" for a number field, and a string field must not get 8); true/false and null are
// the only plain words with a type of their own.
absl::StatusOr<google::protobuf::Value> ToValue(const YAML::Node& node) {
  google::protobuf::Value value;
  switch (node.Type()) {
    case YAML::NodeType::Map:
      for (const auto& entry : node) {
        auto child = ToValue(entry.second);
        if (!child.ok()) return child.status();
        (*value.mutable_struct_value()->mutable_fields())[entry.first.as<std::string>()] = *child;
      }
      if (node.size() == 0) value.mutable_struct_value();
      break;
    case YAML::NodeType::Sequence:
      value.mutable_list_value();
      for (const auto& item : node) {
        auto child = ToValue(item);
        if (!child.ok()) return child.status();
        *value.mutable_list_value()->add_values() = *child;
      }
      break;
    case YAML::NodeType::Scalar: {
      const std::string& text = node.Scalar();
      const bool plain = node.Tag() != "!";
      if (plain && (text == "true" || text == "false")) {
        value.set_bool_value(text == "true");
      } else if (plain && (text == "null" || text == "~")) {
        value.set_null_value(google::protobuf::NULL_VALUE);
      } else {
        value.set_string_value(text);
      }
      break;
    }
    default:
      value.set_null_value(google::protobuf::NULL_VALUE);
  }
  return value;
}

}  // namespace

absl::StatusOr<std::string> ReadInput(const std::string& path) {
  std::stringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
    text << in.rdbuf();
  }
  return text.str();
}

absl::Status ParseMessage(const std::string& text, const std::string& path, google::protobuf::Message* message) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": neither YAML nor JSON: ", e.what()));
  }
  if (!root.IsMap()) return absl::InvalidArgumentError(absl::StrCat(path, ": expected a mapping of fields"));
  auto tree = ToValue(root);
  if (!tree.ok()) return tree.status();
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(*tree, &json);
  auto status = google::protobuf::util::JsonStringToMessage(json, message);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a ", message->GetDescriptor()->name(), ": ",
                                                   std::string(status.message())));
  }
  return absl::OkStatus();
}

static std::string KeyValueError(const std::string& flag, const std::string& text) {
  return absl::StrCat("--", flag, ": \"", text, "\" is not KEY=VALUE");
}

absl::Status AddPairs(const Args& args, const std::string& flag,
                      google::protobuf::Map<std::string, std::string>* into) {
  for (const std::string& pair : args.All(flag)) {
    size_t eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) return absl::InvalidArgumentError(KeyValueError(flag, pair));
    (*into)[pair.substr(0, eq)] = pair.substr(eq + 1);
  }
  return absl::OkStatus();
}

const std::vector<FlagSpec>& SpecFlags() {
  static const std::vector<FlagSpec> flags = {
      {"gpus", 0, true, "N", "whole GPUs to allocate"},
      {"gpu-model", 0, true, "MODEL", "GPU model, as NVML names it (\"NVIDIA H100 80GB HBM3\")"},
      {"gpu-memory", 0, true, "BYTES", "least memory per GPU (40Gi)"},
      {"cpu", 0, true, "CPU", "CPU limit: 500m, 2"},
      {"memory", 0, true, "BYTES", "memory limit: 512Mi, 8Gi"},
      {"env", 0, true, "KEY=VALUE", "environment variable for the process (repeatable)"},
      {"label", 'l', true, "KEY=VALUE", "label on the session (repeatable)"},
      {"skill", 0, true, "NAME", "skill the worker must have, e.g. a model (repeatable)"},
      {"idle-timeout", 0, true, "DURATION", "hibernate after this long without output (10m)"},
      {"workdir", 0, true, "DIR", "working directory of the process"},
      {"priority", 0, true, "CLASS", "priority class (gantryctl priorityclasses; default: the default class)"},
  };
  return flags;
}

absl::Status ApplySpecFlags(const Args& args, const std::vector<std::string>& command, v1::SessionSpec* spec) {
  if (!command.empty()) {
    spec->clear_command();
    for (const std::string& word : command) spec->add_command(word);
  }
  auto* gpus = spec->mutable_resources()->mutable_gpus();
  if (args.Has("gpus")) {
    int count;
    if (!absl::SimpleAtoi(args.Get("gpus"), &count) || count < 0) {
      return absl::InvalidArgumentError(absl::StrCat("--gpus: \"", args.Get("gpus"), "\" is not a count"));
    }
    gpus->set_count(count);
  }
  if (args.Has("gpu-model")) gpus->set_model(args.Get("gpu-model"));
  if (args.Has("gpu-memory")) {
    auto bytes = ParseBytes(args.Get("gpu-memory"));
    if (!bytes.ok()) return absl::InvalidArgumentError(absl::StrCat("--gpu-memory: ", bytes.status().message()));
    gpus->set_min_memory_bytes(*bytes);
  }
  // Memory or a model of no GPU would be dropped without a word: ask for the count.
  for (const char* flag : {"gpu-memory", "gpu-model"}) {
    if (args.Has(flag) && gpus->count() == 0 && !args.Has("template")) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag, " describes the GPUs a session gets: give --gpus N too"));
    }
  }
  if (args.Has("cpu")) {
    auto millis = ParseCpuMillis(args.Get("cpu"));
    if (!millis.ok()) return absl::InvalidArgumentError(absl::StrCat("--cpu: ", millis.status().message()));
    spec->mutable_resources()->set_cpu_millis(*millis);
  }
  if (args.Has("memory")) {
    auto bytes = ParseBytes(args.Get("memory"));
    if (!bytes.ok()) return absl::InvalidArgumentError(absl::StrCat("--memory: ", bytes.status().message()));
    spec->mutable_resources()->set_memory_bytes(*bytes);
  }
  if (auto s = AddPairs(args, "env", spec->mutable_env()); !s.ok()) return s;
  if (auto s = AddPairs(args, "label", spec->mutable_labels()); !s.ok()) return s;
  for (const std::string& skill : args.All("skill")) spec->add_skills(skill);
  if (args.Has("idle-timeout")) {
    absl::Duration d;
    if (auto s = ParseDurationFlag(args, "idle-timeout", &d, /*must_be_positive=*/false); !s.ok()) return s;
    spec->mutable_idle_timeout()->set_seconds(absl::ToInt64Seconds(d));
  }
  if (args.Has("workdir")) spec->set_working_dir(args.Get("workdir"));
  if (args.Has("priority")) spec->set_priority_class(args.Get("priority"));
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ParseBytes(const std::string& text) {
  static const std::pair<const char*, double> kSuffixes[] = {
      {"Ki", 1024.0}, {"Mi", 1048576.0}, {"Gi", 1073741824.0}, {"Ti", 1099511627776.0},
      {"K", 1e3},     {"M", 1e6},        {"G", 1e9},           {"T", 1e12}};
  absl::string_view number = text;
  double scale = 1;
  for (const auto& [suffix, factor] : kSuffixes) {
    if (absl::ConsumeSuffix(&number, suffix)) {
      scale = factor;
      break;
    }
  }
  double value;
  if (!absl::SimpleAtod(number, &value) || value < 0 || !std::isfinite(value)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not a size (512Mi, 40Gi, 2G)"));
  }
  return static_cast<int64_t>(value * scale);
}

absl::StatusOr<int64_t> ParseCpuMillis(const std::string& text) {
  absl::string_view number = text;
  const bool millis = absl::ConsumeSuffix(&number, "m");
  double value;
  if (!absl::SimpleAtod(number, &value) || value < 0 || !std::isfinite(value)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not a CPU amount (500m, 2)"));
  }
  return static_cast<int64_t>(millis ? value : value * 1000);
}

}  // namespace gantry::ctl
