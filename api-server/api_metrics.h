// The API server's fleet-wide figures for /metrics, read from PostgreSQL at each scrape (so
// every replica reports the same numbers): sessions by phase, controllers by status, workers
// online, GPUs, each controller's heartbeat age, and the database pools.
#pragma once

#include <map>
#include <string>

#include "api-server/admin_store.h"
#include "common/pg_pool.h"

namespace gantry::api {

// `pools` by the name their series are labelled with (pool="clients", ...).
void RegisterApiMetrics(AdminStore* admin, std::map<std::string, PgPool*> pools);

}  // namespace gantry::api
