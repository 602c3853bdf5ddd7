#include "api-server/migration_runner.h"

#include <pqxx/connection>
#include <pqxx/result>
#include <pqxx/nontransaction>
#include <pqxx/transaction>

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "api-server/embedded_migrations.h"

namespace gantry::api {
namespace {
// Arbitrary but fixed: "gantry" in ASCII. Every replica uses the same key.
constexpr int64_t kMigrationLockKey = 0x67616e747279;
}  // namespace

std::vector<Migration> EmbeddedMigrations() {
  std::vector<Migration> out;
  for (const auto& file : embedded::kMigrations) {
    out.push_back({absl::string_view(file.name.data(), file.name.size()),
                   absl::string_view(file.text.data(), file.text.size())});
  }
  return out;
}

absl::Status ValidateMigrationNames(const std::vector<Migration>& migrations) {
  int expected = 1;
  for (const auto& m : migrations) {
    absl::string_view name = m.name;
    int number = 0;
    bool shape_ok = name.size() > 9 && name[4] == '_' && name.substr(name.size() - 4) == ".sql" &&
                    absl::SimpleAtoi(name.substr(0, 4), &number);
    for (char c : name.substr(5, name.size() > 9 ? name.size() - 9 : 0)) {
      if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_')) shape_ok = false;
    }
    if (!shape_ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("migration \"", name, "\" is not named NNNN_snake_case.sql"));
    }
    if (number != expected) {
      return absl::InvalidArgumentError(absl::StrCat("migration \"", name, "\" should be number ",
                                                     expected, ": numbers must be gap-free"));
    }
    ++expected;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ApplyMigrations(pqxx::connection& conn,
                                                         const std::vector<Migration>& migrations) {
  absl::Status valid = ValidateMigrationNames(migrations);
  if (!valid.ok()) return valid;

  // The advisory lock is held by the connection (session-level), across the transactions
  // below; libpqxx allows one open transaction object per connection at a time.
  auto exec_outside_tx = [&conn](const std::string& sql) {
    pqxx::nontransaction tx(conn);
    return tx.exec_params(sql, kMigrationLockKey);
  };
  exec_outside_tx("SELECT pg_advisory_lock($1)");
  std::vector<std::string> applied_now;
  absl::Status status;
  try {
    std::set<std::string> applied;
    {
      pqxx::work tx(conn);
      tx.exec(
          "CREATE TABLE IF NOT EXISTS schema_migrations ("
          " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())");
      for (const auto& row : tx.exec("SELECT name FROM schema_migrations")) {
        applied.insert(row[0].as<std::string>());
      }
      tx.commit();
    }
    std::set<std::string> known;
    for (const auto& m : migrations) known.insert(std::string(m.name));
    for (const auto& name : applied) {
      if (known.count(name) == 0) {
        status = absl::FailedPreconditionError(absl::StrCat(
            "the database has migration ", name,
            " that this binary does not know: it was migrated by a newer gantry-api"));
      }
    }
    if (status.ok()) {
      for (const auto& m : migrations) {
        std::string name(m.name);
        if (applied.count(name) != 0) continue;
        pqxx::work tx(conn);
        // A migration may rewrite a large table: the statement bound of every other call
        // (pg_bounds.h) would cancel it halfway, each time it is tried.
        tx.exec("SET LOCAL statement_timeout = 0");
        tx.exec(std::string(m.sql));
        tx.exec_params("INSERT INTO schema_migrations (name) VALUES ($1)", name);
        tx.commit();
        applied_now.push_back(name);
      }
    }
  } catch (...) {
    // Release the lock before the error climbs; the connection may be broken, so best effort.
    try {
      exec_outside_tx("SELECT pg_advisory_unlock($1)");
    } catch (...) {
    }
    throw;
  }
  exec_outside_tx("SELECT pg_advisory_unlock($1)");
  if (!status.ok()) return status;
  return applied_now;
}

}  // namespace gantry::api
