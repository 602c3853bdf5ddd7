#include "common/invoke_request.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace gantry {

bool IsValidCapabilityName(absl::string_view name) {
  if (name.empty() || name.size() > 128 || name[0] == '/') return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '/' && c != '-') return false;
  }
  return true;
}

absl::StatusOr<SemVerRange> ValidateInvokeRequest(const v1::InvokeRequest& r, int64_t max_payload_bytes) {
  if (!IsValidCapabilityName(r.capability())) {
    return absl::InvalidArgumentError(
        "capability: required, 1..128 of [A-Za-z0-9._/-] not starting with '/', e.g. model/llama-3.2-3b");
  }
  auto range = SemVerRange::Parse(r.version());
  if (!range.ok()) return absl::InvalidArgumentError(absl::StrCat("version: ", range.status().message()));
  if (static_cast<int64_t>(r.payload().size()) > max_payload_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("payload: is ", r.payload().size(), " bytes; at most ",
                                                   max_payload_bytes));
  }
  if (r.metadata_size() > 32) return absl::InvalidArgumentError("metadata: at most 32 entries");
  for (const auto& [k, v] : r.metadata()) {
    if (k.empty() || k.size() > 63 || v.size() > 1024 || k.find('\0') != std::string::npos ||
        v.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          "metadata: keys 1..63 bytes, values at most 1024 bytes, no NUL bytes");
    }
  }
  return range;
}

}  // namespace gantry
