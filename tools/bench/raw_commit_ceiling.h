// The place scenario's physical baseline: what the same PostgreSQL commits when nothing of
// Gantry's design is in the way.
#pragma once

#include <string>

#include "tools/bench/load.h"

namespace gantry::bench {

// `operations` operations from `clients` connections of their own, each operation
// `commits_per_operation` transactions on a row of its own (an insert, then updates of that
// row), so no two clients ever wait on one lock: only the disk's flushes (group commit
// included) and the server's CPU limit it. synchronous_commit stays as the server has it (on, as
// Gantry's). The rows live in a table of their own, created and dropped here.
LoadResult RawCommitCeiling(const std::string& dsn, int clients, int operations, int commits_per_operation);

}  // namespace gantry::bench
