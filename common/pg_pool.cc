#include "common/pg_pool.h"

#include <pqxx/except>
#include <pqxx/nontransaction>

#include "absl/strings/str_cat.h"

namespace gantry {

PgPool::PgPool(std::string dsn, int size, absl::Duration acquire_timeout)
    : dsn_(std::move(dsn)), size_(size), acquire_timeout_(acquire_timeout), slots_(size) {}

PgPool::~PgPool() = default;

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

absl::Status PgPool::Run(const std::function<absl::Status(pqxx::connection&)>& fn) {
  Slot* slot = nullptr;
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto free_slot = [&]() -> Slot* {
      for (auto& s : slots_) {
        if (!s.busy) return &s;
      }
      return nullptr;
    };
    if (!cv_.wait_for(lock, absl::ToChronoMilliseconds(acquire_timeout_),
                      [&] { return free_slot() != nullptr; })) {
      return absl::UnavailableError(absl::StrCat("all ", size_, " database connections busy for ",
                                                 absl::FormatDuration(acquire_timeout_)));
    }
    slot = free_slot();
    slot->busy = true;
  }
  absl::Status status;
  bool drop_connection = false;
  try {
    if (slot->conn == nullptr || !slot->conn->is_open()) {
      slot->conn = std::make_unique<pqxx::connection>(dsn_);
    }
    status = fn(*slot->conn);
  } catch (const std::exception& e) {
    status = StatusFromPqxxException(e);
    drop_connection = status.code() == absl::StatusCode::kUnavailable;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (drop_connection) slot->conn.reset();
    slot->busy = false;
  }
  cv_.notify_one();
  return status;
}

bool PgPool::Ping() {
  return Run([](pqxx::connection& c) {
           pqxx::nontransaction tx(c);
           tx.exec("SELECT 1");
           return absl::OkStatus();
         }).ok();
}

}  // namespace gantry
