// Validation of InvokeRequest, shared by the API server (at the edge) and the controller
// (which must not trust its caller's checks): INVALID_ARGUMENT naming the field.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/semver.h"
#include "gantry/v1/invoke_service.pb.h"

namespace gantry {

// Capability names: 1..128 of [A-Za-z0-9._/-], not starting with '/', e.g. "model/llama-3.2-3b".
bool IsValidCapabilityName(absl::string_view name);

// The request's version range, once every field is within bounds.
absl::StatusOr<SemVerRange> ValidateInvokeRequest(const v1::InvokeRequest& request, int64_t max_payload_bytes);

}  // namespace gantry
