// Edge validation of client requests: every field bounded, every error INVALID_ARGUMENT naming
// the field and saying what is allowed. Pure functions: unit-tested without a server.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "gantry/v1/session_service.pb.h"

namespace gantry::api {

struct SpecLimits {
  int max_args = 256;
  size_t max_arg_bytes = 4096;
  int max_env = 256;
  size_t max_env_value_bytes = 32 * 1024;
  // argv and envp together, as exec will see them ("k=v\0" per variable): Linux refuses an
  // exec past 2 MiB (E2BIG), which would fail the session only once placed.
  size_t max_exec_bytes = 1024 * 1024;
  int64_t max_cpu_millis = 1024 * 1000;             // 1,024 CPUs
  int64_t max_memory_bytes = int64_t{64} << 40;     // 64 TiB
  int64_t max_gpu_memory_bytes = int64_t{1} << 40;  // 1 TiB per GPU
  int max_gpus = 64;
  int max_skills = 64;
  int max_labels = 32;
};

absl::Status ValidateSessionSpec(const v1::SessionSpec& spec, const SpecLimits& limits = {});
absl::Status ValidateCreateSessionRequest(const v1::CreateSessionRequest& request,
                                          const SpecLimits& limits = {});
// page_size 0..1000; labels bounded.
absl::Status ValidateListSessionsRequest(const v1::ListSessionsRequest& request);

// True for the canonical textual form of a UUID.
bool IsUuid(absl::string_view s);

}  // namespace gantry::api
