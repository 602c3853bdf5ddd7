// How long anything may wait on PostgreSQL. A database that hangs instead of dying (frozen,
// overloaded, cut off by the network) must cost each caller a bounded wait and a clear
// UNAVAILABLE, never a thread blocked for good. Bounds are set on both sides of every
// connection: the client's (connect timeout, TCP keepalives and user timeout: a peer that
// vanished is noticed) and the server's (statement, lock and idle-in-transaction timeouts,
// and the server's own keepalives: it ends the session of a client that vanished, which
// releases that session's advisory locks, such as the health-check leader's). A server that
// is frozen outright answers neither side: PgPool's watchdog closes the connection of a call
// past its bound.
#pragma once

#include <string>

#include "absl/time/time.h"

namespace gantry {

struct PgBounds {
  // The longest one PgPool::Run (all its statements) may take; the server cancels a statement
  // or lock wait at 4/5 of it. At least 2 s: a new connection needs that much (libpq's least
  // connect_timeout), and a call with less left does not try one.
  absl::Duration call_timeout = absl::Seconds(5);
  // A peer that stops answering at the TCP level is given up within about this long.
  absl::Duration peer_timeout = absl::Seconds(10);
};

// `dsn` (a libpq key=value string or a postgres:// URI) with the connection parameters that
// carry `bounds`. A parameter the DSN sets already is left as the operator set it (for
// `options`, ours are not added at all).
std::string BoundedDsn(const std::string& dsn, const PgBounds& bounds);

// `dsn` whose connection attempt gives up after `seconds` (libpq takes whole seconds, at least
// 2), whatever connect_timeout it had: libpq reads the last value given.
std::string WithConnectTimeout(const std::string& dsn, int seconds);

}  // namespace gantry
