// Keepalive for every gRPC connection Gantry makes or serves (grpc_server.cc, tls.cc): each
// side pings every kKeepaliveTimeMs and drops the connection if a ping goes unanswered for
// kKeepaliveTimeoutMs, so a peer that froze or vanished mid-stream is noticed within 15 s and
// its streams end, instead of holding threads, sessions and invokes forever. (A frozen worker
// is noticed sooner by its missed heartbeats; this is the transport's own bound.) The timeout
// is the larger part: a loaded machine running the sanitized build can be a few seconds late
// answering a ping, and that must not cost a healthy stream. Servers take a ping as often as
// every kMinPingIntervalMs: our clients' pings can arrive closer together on a loaded machine,
// and two too close would get the connection closed for "too many pings". Shorter (5 s + 5 s,
// then 2 s + 6 s) each cost a healthy worker's stream once in the ASan suite on a loaded 2-core
// machine, beside the soak (docs/RELIABILITY.md); until that is understood, 15 s it is.
#pragma once

namespace gantry {

inline constexpr int kKeepaliveTimeMs = 5000;
inline constexpr int kKeepaliveTimeoutMs = 10000;
inline constexpr int kMinPingIntervalMs = 1000;

}  // namespace gantry
