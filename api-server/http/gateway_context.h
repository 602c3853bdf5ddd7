// What every connection of the HTTP gateway shares: the in-process stubs of gantry-api's own
// services, and the gateway's limits.
#pragma once

#include <cstdint>
#include <functional>

#include "absl/time/time.h"
#include "gantry/v1/admin_service.grpc.pb.h"
#include "gantry/v1/invoke_service.grpc.pb.h"

namespace gantry::api::http {

struct GatewayContext {
  v1::InvokeService::Stub* invoke = nullptr;
  v1::AdminService::Stub* admin = nullptr;
  std::function<bool()> ready;  // GET /health: the API server can serve (its database is up).
  absl::Duration request_timeout = absl::Minutes(10);  // Unless x-gantry-timeout-ms says less.
  int64_t max_body_bytes = 4 * 1024 * 1024;            // Requests, and a non-streamed answer.
  absl::Duration idle_timeout = absl::Seconds(60);     // A kept-alive connection with no request.
};

}  // namespace gantry::api::http
