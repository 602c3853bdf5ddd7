#include "common/pg_pool.h"

#include <pqxx/except>
#include <pqxx/nontransaction>
#include <sys/socket.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace gantry {

namespace {
thread_local absl::Time t_call_deadline = absl::InfiniteFuture();
}  // namespace

std::unique_ptr<pqxx::connection> OpenConnection(const std::string& dsn) {
  auto conn = std::make_unique<pqxx::connection>(dsn);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  conn->inhibit_reactivation(true);  // Deprecated in libpqxx 7, which never reactivates.
#pragma GCC diagnostic pop
  return conn;
}

DbDeadlineScope::DbDeadlineScope(absl::Time deadline) : previous_(t_call_deadline) {
  t_call_deadline = std::min(deadline, previous_);
}

DbDeadlineScope::~DbDeadlineScope() { t_call_deadline = previous_; }

absl::Time DbDeadlineScope::Current() { return t_call_deadline; }

PgPool::PgPool(const std::string& dsn, int size, PgBounds bounds, absl::Duration acquire_timeout)
    : dsn_(BoundedDsn(dsn, bounds)), size_(size), bounds_(bounds), acquire_timeout_(acquire_timeout), slots_(size) {
  watchdog_ = std::thread([this] { Watch(); });
}

PgPool::~PgPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  watchdog_.join();
}

void PgPool::Watch() {
  // A tenth of the bound apart: a call is cut at most 10% past it.
  const auto period = absl::ToChronoMilliseconds(std::max(bounds_.call_timeout / 10, absl::Milliseconds(10)));
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_cv_.wait_for(lock, period, [&] { return stopping_; })) {
    const absl::Time now = absl::Now();
    for (Slot& s : slots_) {
      if (s.busy && !s.cut && s.socket >= 0 && now > s.deadline) {
        // Wakes the call blocked reading it (libpq then reports the connection lost). The
        // descriptor stays open, and so valid, until Run drops the connection under mu_.
        shutdown(s.socket, SHUT_RDWR);
        s.cut = true;
      }
    }
  }
}

int PgPool::in_use() const {
  std::lock_guard<std::mutex> lock(mu_);
  int n = 0;
  for (const auto& s : slots_) n += s.busy ? 1 : 0;
  return n;
}

absl::Status StatusFromPqxxException(const std::exception& e) {
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr ||
      dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) {
    return absl::UnavailableError(absl::StrCat("database unavailable: ", e.what(),
                                               " (retry; the server reconnects by itself)"));
  }
  if (dynamic_cast<const pqxx::unique_violation*>(&e) != nullptr) {
    return absl::AlreadyExistsError(e.what());
  }
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    const std::string& state = sql->sqlstate();
    // 40001 serialization_failure, 40P01 deadlock_detected: safe to retry.
    if (state == "40001" || state == "40P01") return absl::AbortedError(e.what());
    // 57014 query_canceled (statement_timeout), 55P03 lock_not_available (lock_timeout), 25P03
    // idle_in_transaction_session_timeout: the database did not get it done within its bound.
    if (state == "57014" || state == "55P03" || state == "25P03") {
      return absl::UnavailableError(absl::StrCat("the database did not answer in time: ", e.what()));
    }
    // Class 08: connection exception; 57P01..03: admin shutdown / cannot connect now.
    if (state.rfind("08", 0) == 0 || state.rfind("57P", 0) == 0) {
      return absl::UnavailableError(absl::StrCat("database unavailable: ", e.what()));
    }
    // 22xxx data exceptions (e.g. invalid byte sequence): the input was bad.
    if (state.rfind("22", 0) == 0) return absl::InvalidArgumentError(e.what());
    return absl::InternalError(absl::StrCat("database error ", state, ": ", e.what()));
  }
  return absl::InternalError(absl::StrCat("database error: ", e.what()));
}

absl::Status PgPool::Run(const std::function<absl::Status(pqxx::connection&)>& fn, absl::Duration timeout) {
  if (timeout <= absl::ZeroDuration()) timeout = bounds_.call_timeout;
  // One deadline for everything below: the wait for a connection, connecting, and fn.
  const absl::Time start = absl::Now();
  const absl::Time deadline = std::min(start + timeout, t_call_deadline);
  if (deadline <= absl::Now()) {
    return absl::UnavailableError("the database did not answer before the call's deadline");
  }
  Slot* slot = nullptr;
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto free_slot = [&]() -> Slot* {
      for (auto& s : slots_) {
        if (!s.busy) return &s;
      }
      return nullptr;
    };
    const absl::Time acquire_by = std::min(deadline, absl::Now() + acquire_timeout_);
    if (!cv_.wait_until(lock, absl::ToChronoTime(acquire_by), [&] { return free_slot() != nullptr; })) {
      return absl::UnavailableError(absl::StrCat("all ", size_, " database connections stayed busy; retry"));
    }
    slot = free_slot();
    slot->busy = true;
    slot->cut = false;
    slot->deadline = deadline;
  }
  absl::Status status;
  bool drop_connection = false;
  try {
    if (slot->conn == nullptr || !slot->conn->is_open()) {
      // connect_timeout bounds this (the watchdog has no socket to close yet): what is left, in
      // whole seconds, but no less than libpq's least, 2. With under 1.5 s left, no attempt is
      // made: it could overrun the bound by more than half a second.
      const absl::Duration left = deadline - absl::Now();
      if (left < absl::Milliseconds(1500)) throw pqxx::broken_connection("too little time left to connect within the bound");
      auto conn = OpenConnection(WithConnectTimeout(dsn_, static_cast<int>(absl::ToInt64Seconds(left))));
      std::lock_guard<std::mutex> lock(mu_);
      slot->socket = conn->sock();
      slot->conn = std::move(conn);
    }
    status = fn(*slot->conn);
  } catch (const std::exception& e) {
    status = StatusFromPqxxException(e);
    drop_connection = status.code() == absl::StatusCode::kUnavailable;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (slot->cut) {
      drop_connection = true;
      if (!status.ok()) {
        status = absl::UnavailableError(absl::StrCat("the database is not answering: no reply within ",
                                                     absl::FormatDuration(deadline - start),
                                                     " (retry; the server reconnects by itself)"));
      }
    }
    if (drop_connection) {
      slot->conn.reset();
      slot->socket = -1;
    }
    slot->busy = false;
  }
  cv_.notify_one();
  return status;
}

bool PgPool::Ping() {
  // Quicker than a call's bound: callers are turned away at once (DatabaseMonitor) only once a
  // probe has failed. (3 s: a new connection needs 2 of them, libpq's least connect_timeout.)
  return Run([](pqxx::connection& c) {
           pqxx::nontransaction tx(c);
           tx.exec("SELECT 1");
           return absl::OkStatus();
         }, std::min(bounds_.call_timeout, absl::Seconds(3))).ok();
}

}  // namespace gantry
