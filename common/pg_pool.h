// A bounded pool of PostgreSQL connections (a libpqxx connection is not thread-safe: each is
// used by one thread at a time). Connections are opened lazily and reopened after a failure,
// so a server started while PostgreSQL is down recovers by itself once it is up.
//
// Thread-safe. Never call it from a gRPC callback-reactor thread: it blocks.
#pragma once

#include <pqxx/connection>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"

namespace gantry {

class PgPool {
 public:
  PgPool(std::string dsn, int size, absl::Duration acquire_timeout = absl::Seconds(5));
  ~PgPool();

  PgPool(const PgPool&) = delete;
  PgPool& operator=(const PgPool&) = delete;

  // Runs `fn` with a connection. libpqxx exceptions become statuses here, in one place:
  // connection loss -> UNAVAILABLE (and the connection is reopened next time), unique
  // violation -> ALREADY_EXISTS, serialization failure -> ABORTED, other SQL errors ->
  // INTERNAL. No free connection within the acquire timeout -> UNAVAILABLE.
  absl::Status Run(const std::function<absl::Status(pqxx::connection&)>& fn);

  // True if a trivial query succeeds now.
  bool Ping();

  int size() const { return size_; }
  int in_use() const;

 private:
  struct Slot {
    std::unique_ptr<pqxx::connection> conn;
    bool busy = false;
  };

  const std::string dsn_;
  const int size_;
  const absl::Duration acquire_timeout_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Slot> slots_ ABSL_GUARDED_BY(mu_);
};

// The SQLSTATE-based mapping used by PgPool::Run, exposed for code that catches itself.
absl::Status StatusFromPqxxException(const std::exception& e);

}  // namespace gantry
