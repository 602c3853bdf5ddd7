// Runs one of the embedded SQL statements (a string with static storage, as sql_queries.h
// holds) as a prepared statement on the transaction's connection: libpqxx defines it there on
// first use and PostgreSQL parses and analyses it once per connection, where exec_params sends
// an unnamed statement that is parsed, analysed and planned on every call (a third of
// PostgreSQL's CPU on the create path: docs/PERFORMANCE.md). Redefining a name with the same
// text is a no-op in libpqxx, so nothing needs to remember what a connection has prepared; a
// reopened connection starts with none.
#pragma once

#include <pqxx/transaction_base>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"

namespace gantry {

template <typename... Args>
pqxx::result ExecPrepared(pqxx::transaction_base& tx, std::string_view sql, Args&&... args) {
  // Named by where the text lives: one name per statement in this process, nothing to hash.
  const std::string name = absl::StrCat("gantry_", absl::Hex(reinterpret_cast<uintptr_t>(sql.data())));
  tx.conn().prepare(name, std::string(sql));
  return tx.exec_prepared(name, std::forward<Args>(args)...);
}

}  // namespace gantry
