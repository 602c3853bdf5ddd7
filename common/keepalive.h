// Keepalive for every gRPC connection Gantry makes or serves (grpc_server.cc, tls.cc): each
// side pings every kKeepaliveTimeMs and drops the connection if a ping goes unanswered for
// kKeepaliveTimeoutMs, so a peer that froze or vanished mid-stream is noticed within 10 s and
// its streams end, instead of holding threads, sessions and invokes forever. (A frozen worker
// is noticed sooner by its missed heartbeats; this is the transport's own bound.) The timeout
// is the larger part: a loaded machine running the sanitized build can be a few seconds late
// answering a ping, and that must not cost a healthy stream. Servers take a ping as often as
// every kMinPingIntervalMs: our clients' pings can arrive closer together on a loaded machine,
// and two too close would get the connection closed for "too many pings". A stream the keepalive
// drops is not a lost worker: a controller stalled past it finds the stream ended and its
// worker's heartbeats overdue, and keeps the sessions for the worker's return (Fleet::Detach).
// And a worker acts on its controller's commands off the thread that reads the stream
// (worker/command_queue.h), so its connection is read, acknowledgements included, however long
// 500 session starts take. Before those two fixes, 2 s + 6 s cost a healthy worker all its
// sessions once in the ASan suite and once in the plain one; the timeout, 8 s, keeps a margin
// over the 6 s that did.
#pragma once

namespace gantry {

inline constexpr int kKeepaliveTimeMs = 2000;
inline constexpr int kKeepaliveTimeoutMs = 8000;
inline constexpr int kMinPingIntervalMs = 1000;

}  // namespace gantry
