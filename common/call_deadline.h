// A served call's deadline as absl::Time: InfiniteFuture when the client set none (gRPC then
// reports system_clock's maximum, which absl would read as a date 292 years away).
#pragma once

#include <grpcpp/server_context.h>

#include <chrono>

#include "absl/time/time.h"

namespace gantry {

inline absl::Time CallDeadline(const grpc::ServerContext& ctx) {
  if (ctx.deadline() == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(ctx.deadline());
}

}  // namespace gantry
