#include "api-server/request_validation.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/escaping.h"
#include "common/identity.h"

namespace gantry::api {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

absl::Status CheckText(absl::string_view field, absl::string_view value, size_t max_bytes) {
  if (value.size() > max_bytes) {
    return Invalid(field, absl::StrCat("is ", value.size(), " bytes; at most ", max_bytes));
  }
  if (value.find('\0') != absl::string_view::npos) return Invalid(field, "contains a NUL byte");
  return absl::OkStatus();
}

// A number that must be 0..max, named with its range when it is not.
absl::Status CheckRange(absl::string_view field, int64_t value, int64_t max) {
  if (value >= 0 && value <= max) return absl::OkStatus();
  return Invalid(field, absl::StrCat("is ", value, "; must be 0..", max));
}

bool IsEnvKey(absl::string_view key) {
  if (key.empty() || absl::ascii_isdigit(key[0])) return false;
  for (char c : key) {
    if (!absl::ascii_isalnum(c) && c != '_') return false;
  }
  return true;
}

absl::Status CheckLabels(absl::string_view field,
                         const google::protobuf::Map<std::string, std::string>& labels,
                         int max_labels) {
  if (static_cast<int>(labels.size()) > max_labels) {
    return Invalid(field, absl::StrCat("has ", labels.size(), " entries; at most ", max_labels));
  }
  for (const auto& [k, v] : labels) {
    std::string key_field = absl::StrCat(field, "[\"", absl::CHexEscape(k.substr(0, 64)), "\"]");
    if (k.empty()) return Invalid(field, "has an empty key");
    absl::Status s = CheckText(key_field + " key", k, 63);
    if (!s.ok()) return s;
    s = CheckText(key_field, v, 256);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateSessionSpec(const v1::SessionSpec& spec, const SpecLimits& limits) {
  if (spec.command_size() == 0 || spec.command(0).empty()) {
    return Invalid("spec.command", "is empty; give the program to run and its arguments");
  }
  if (spec.command_size() > limits.max_args) {
    return Invalid("spec.command",
                   absl::StrCat("has ", spec.command_size(), " arguments; at most ", limits.max_args));
  }
  for (int i = 0; i < spec.command_size(); ++i) {
    absl::Status s = CheckText(absl::StrCat("spec.command[", i, "]"), spec.command(i),
                               limits.max_arg_bytes);
    if (!s.ok()) return s;
  }
  if (static_cast<int>(spec.env_size()) > limits.max_env) {
    return Invalid("spec.env", absl::StrCat("has ", spec.env_size(), " entries; at most ", limits.max_env));
  }
  for (const auto& [k, v] : spec.env()) {
    std::string field = absl::StrCat("spec.env[\"", absl::CHexEscape(k.substr(0, 64)), "\"]");
    if (k.size() > 256 || !IsEnvKey(k)) {
      return Invalid(field, "key must match [A-Za-z_][A-Za-z0-9_]* (at most 256 bytes)");
    }
    if (k == "CUDA_VISIBLE_DEVICES" || k == "NVIDIA_VISIBLE_DEVICES") {
      return Invalid(field, "is set by the worker to the session's GPUs; request GPUs with "
                            "spec.resources.gpus instead");
    }
    absl::Status s = CheckText(field, v, limits.max_env_value_bytes);
    if (!s.ok()) return s;
  }
  size_t exec_bytes = 0;
  for (const auto& arg : spec.command()) exec_bytes += arg.size() + 1;
  for (const auto& [k, v] : spec.env()) exec_bytes += k.size() + v.size() + 2;
  if (exec_bytes > limits.max_exec_bytes) {
    return Invalid("spec.command and spec.env", absl::StrCat("are ", exec_bytes, " bytes together; at most ",
                                                            limits.max_exec_bytes, " (what exec accepts, with room)"));
  }
  const auto& res = spec.resources();
  const auto& gpus = res.gpus();
  for (absl::Status s : {CheckRange("spec.resources.cpu_millis", res.cpu_millis(), limits.max_cpu_millis),
                         CheckRange("spec.resources.memory_bytes", res.memory_bytes(), limits.max_memory_bytes),
                         CheckRange("spec.resources.gpus.count", gpus.count(), limits.max_gpus),
                         CheckRange("spec.resources.gpus.min_memory_bytes", gpus.min_memory_bytes(),
                                    limits.max_gpu_memory_bytes)}) {
    if (!s.ok()) return s;
  }
  absl::Status s = CheckText("spec.resources.gpus.model", gpus.model(), 128);
  if (!s.ok()) return s;
  // Said of no GPU, these would be dropped without a word: the session would run on none.
  if (gpus.count() == 0 && gpus.min_memory_bytes() > 0) {
    return Invalid("spec.resources.gpus.min_memory_bytes", "describes GPUs, but spec.resources.gpus.count is 0: set the count");
  }
  if (gpus.count() == 0 && !gpus.model().empty()) {
    return Invalid("spec.resources.gpus.model", "describes GPUs, but spec.resources.gpus.count is 0: set the count");
  }
  if (spec.skills_size() > limits.max_skills) {
    return Invalid("spec.skills", absl::StrCat("has ", spec.skills_size(), "; at most ", limits.max_skills));
  }
  for (int i = 0; i < spec.skills_size(); ++i) {
    std::string field = absl::StrCat("spec.skills[", i, "]");
    if (spec.skills(i).empty()) return Invalid(field, "is empty");
    s = CheckText(field, spec.skills(i), 256);
    if (!s.ok()) return s;
  }
  if (spec.idle_timeout().seconds() < 0 || spec.idle_timeout().nanos() < 0 ||
      spec.idle_timeout().nanos() >= 1000000000) {
    return Invalid("spec.idle_timeout", "must be a non-negative duration");
  }
  s = CheckLabels("spec.labels", spec.labels(), limits.max_labels);
  if (!s.ok()) return s;
  s = CheckText("spec.working_dir", spec.working_dir(), 4096);
  if (!s.ok()) return s;
  if (!spec.working_dir().empty() && spec.working_dir()[0] != '/') {
    return Invalid("spec.working_dir", "must be an absolute path");
  }
  return absl::OkStatus();
}

absl::Status ValidateCreateSessionRequest(const v1::CreateSessionRequest& r,
                                          const SpecLimits& limits) {
  absl::Status s = CheckText("request_id", r.request_id(), 128);
  if (!s.ok()) return s;
  if (!r.template_id().empty() && !IsValidName(r.template_id())) {
    return Invalid("template_id", "is not a template id (1..63 of [a-z0-9._-])");
  }
  if (!r.controller_id().empty() && !IsUuid(r.controller_id())) {
    return Invalid("controller_id", "is not a controller id (a UUID from ListControllers)");
  }
  s = CheckText("controller_type", r.controller_type(), 63);
  if (!s.ok()) return s;
  s = CheckLabels("controller_selector", r.controller_selector(), limits.max_labels);
  if (!s.ok()) return s;
  if (r.has_queue_timeout() && !r.queue()) return Invalid("queue_timeout", "is only for a create with queue set");
  if (r.queue() && r.wait_for_running()) {
    return Invalid("queue", "cannot be combined with wait_for_running: a queued session may wait for hours; "
                            "follow it with WatchSession");
  }
  if (r.has_queue_timeout() && (r.queue_timeout().seconds() < 1 || r.queue_timeout().seconds() > 7 * 24 * 3600 ||
                                r.queue_timeout().nanos() != 0)) {
    return Invalid("queue_timeout", "must be whole seconds, 1s..168h");
  }
  if (!r.has_spec()) return Invalid("spec", "is required");
  return ValidateSessionSpec(r.spec(), limits);
}

absl::Status ValidateListSessionsRequest(const v1::ListSessionsRequest& r) {
  if (r.page_size() < 0 || r.page_size() > 1000) {
    return Invalid("page_size", absl::StrCat("is ", r.page_size(), "; must be 0..1000"));
  }
  if (r.page_token().size() > 256) return Invalid("page_token", "is too long");
  if (!r.controller_id().empty() && !IsUuid(r.controller_id())) {
    return Invalid("controller_id", "is not a controller id (a UUID)");
  }
  if (!v1::SessionPhase_IsValid(r.phase())) return Invalid("phase", "is not a SessionPhase");
  return CheckLabels("label_selector", r.label_selector(), 32);
}

bool IsUuid(absl::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

}  // namespace gantry::api
