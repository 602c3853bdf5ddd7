// The API server's fleet-wide figures for /metrics, read from PostgreSQL at each scrape (so
// every replica reports the same numbers): sessions by phase, controllers by status, workers
// online, GPUs, each controller's heartbeat age, and the database pool.
#pragma once

#include "api-server/admin_store.h"
#include "common/pg_pool.h"

namespace gantry::api {

void RegisterApiMetrics(AdminStore* admin, PgPool* pool);

}  // namespace gantry::api
