// Applies the embedded migrations/NNNN_name.sql files in order, each in its own transaction,
// recording each in schema_migrations. Holds a PostgreSQL advisory lock throughout, so several
// API server replicas can start at once and exactly one applies each migration.
#pragma once

#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace pqxx {
template <typename> class basic_connection_base;
class connect_direct;
}  // namespace pqxx

namespace gantry::api {

struct Migration {
  absl::string_view name;  // "0001_initial_schema.sql"
  absl::string_view sql;
};

// The migrations compiled into this binary, in apply order.
std::vector<Migration> EmbeddedMigrations();

// Names must be NNNN_snake_case.sql with strictly increasing, gap-free numbers from 0001.
absl::Status ValidateMigrationNames(const std::vector<Migration>& migrations);

// How long one PgPool::Run that applies migrations may take (it lifts the statement bound).
inline constexpr absl::Duration kMigrationTimeout = absl::Hours(1);

// Applies what is pending; returns the names it applied (empty when up to date).
// A database that has a migration this binary does not know (a newer schema) is refused with
// FAILED_PRECONDITION: run the newer binary.
absl::StatusOr<std::vector<std::string>> ApplyMigrations(
    pqxx::basic_connection_base<pqxx::connect_direct>& conn,
    const std::vector<Migration>& migrations);

}  // namespace gantry::api
