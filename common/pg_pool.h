// A bounded pool of PostgreSQL connections (a libpqxx connection is not thread-safe: each is
// used by one thread at a time). Connections are opened lazily and reopened after a failure,
// so a server started while PostgreSQL is down recovers by itself once it is up.
//
// Every wait is bounded (pg_bounds.h): connections carry the client- and server-side bounds,
// and a watchdog closes the connection of a call still running past bounds.call_timeout, which
// is all that reaches a server frozen outright (SIGSTOP, a wedged disk): its kernel still
// acknowledges the connection, so neither keepalives nor its own timeouts fire.
//
// Thread-safe. Never call it from a gRPC callback-reactor thread: it blocks.
#pragma once

#include <pqxx/connection>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/pg_bounds.h"

namespace gantry {

class PgPool {
 public:
  PgPool(const std::string& dsn, int size, PgBounds bounds = {}, absl::Duration acquire_timeout = absl::Seconds(5));
  ~PgPool();

  PgPool(const PgPool&) = delete;
  PgPool& operator=(const PgPool&) = delete;

  // Runs `fn` with a connection. libpqxx exceptions become statuses here, in one place:
  // connection loss -> UNAVAILABLE (and the connection is reopened next time), unique
  // violation -> ALREADY_EXISTS, serialization failure -> ABORTED, a statement or lock wait
  // past its bound -> UNAVAILABLE, other SQL errors -> INTERNAL. No free connection within the
  // acquire timeout -> UNAVAILABLE; no answer within bounds.call_timeout (the wait for a
  // connection included) -> UNAVAILABLE, saying the database is not answering. Everything ends
  // at this thread's DbDeadlineScope, if sooner. `timeout`, if set, replaces bounds.call_timeout for this
  // call (schema migrations, which also lift the server's statement bound themselves).
  absl::Status Run(const std::function<absl::Status(pqxx::connection&)>& fn,
                   absl::Duration timeout = absl::ZeroDuration());

  // True if a trivial query succeeds now, within 3 s at most.
  bool Ping();

  int size() const { return size_; }
  int in_use() const;
  const PgBounds& bounds() const { return bounds_; }

 private:
  struct Slot {
    std::unique_ptr<pqxx::connection> conn;
    bool busy = false;
    int socket = -1;         // conn's, while open (the watchdog may shut it down)
    absl::Time deadline;     // of the call using it
    bool cut = false;        // the watchdog shut its socket down: the call took too long
  };
  void Watch();

  const std::string dsn_;
  const int size_;
  const PgBounds bounds_;
  const absl::Duration acquire_timeout_;
  mutable std::mutex mu_;
  std::condition_variable cv_;        // a slot was freed
  std::condition_variable stop_cv_;   // stopping_ was set
  std::vector<Slot> slots_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread watchdog_;
};

// A connection to `dsn` that stays broken once broken. libpqxx 6 otherwise reconnects by itself
// on the next use, silently: a session-level advisory lock (the health-check leader's) is then
// gone while its holder thinks it still has it, and a call the pool's watchdog cut would wait
// out a whole new connect_timeout.
std::unique_ptr<pqxx::connection> OpenConnection(const std::string& dsn);

// The deadline of the call this thread serves (the synchronous gRPC server runs each call on
// one thread), for as long as it lives: PgPool::Run waits no longer than it for a connection or
// an answer, whatever its own bounds, so a caller is answered before it gives up.
class DbDeadlineScope {
 public:
  explicit DbDeadlineScope(absl::Time deadline);
  ~DbDeadlineScope();
  // This thread's deadline (InfiniteFuture outside any scope).
  static absl::Time Current();
  DbDeadlineScope(const DbDeadlineScope&) = delete;
  DbDeadlineScope& operator=(const DbDeadlineScope&) = delete;

 private:
  absl::Time previous_;
};

// The SQLSTATE-based mapping used by PgPool::Run, exposed for code that catches itself.
absl::Status StatusFromPqxxException(const std::exception& e);

}  // namespace gantry
