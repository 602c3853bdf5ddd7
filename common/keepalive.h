// Keepalive for every gRPC connection Gantry makes or serves (grpc_server.cc, tls.cc): each
// side pings every kKeepaliveTimeMs and drops the connection if a ping goes unanswered for
// kKeepaliveTimeoutMs, so a peer that froze or vanished mid-stream is noticed within 10 s and
// its streams end, instead of holding threads, sessions and invokes forever.
#pragma once

namespace gantry {

inline constexpr int kKeepaliveTimeMs = 5000;
inline constexpr int kKeepaliveTimeoutMs = 5000;

}  // namespace gantry
