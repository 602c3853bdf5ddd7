# Sourced by tools/test.sh and tools/bench.sh (ROOT set): starts a throwaway PostgreSQL for this
# run, exports GANTRY_TEST_DATABASE_URL for the tests' fleets, and removes it on exit.
# PostgreSQL runs as the postgres user when we are root: its directory must be reachable.
PG_ROOT="$(mktemp -d /tmp/gantry-pg-XXXXXX)"
chmod 755 "$PG_ROOT"
cleanup_test_database() {
  "$ROOT/tools/lib/throwaway-pg.sh" purge "$PG_ROOT/pg" || true
  rm -rf "$PG_ROOT"
}
trap cleanup_test_database EXIT
PG_PORT="$("$ROOT/tools/lib/free-port.sh")"
# Assigned apart from the export, whose own status would hide a server that failed to start.
GANTRY_TEST_DATABASE_URL="$("$ROOT/tools/lib/throwaway-pg.sh" start "$PG_ROOT/pg" "$PG_PORT")"
export GANTRY_TEST_DATABASE_URL
# Debian's c-ares leaks a little when resolving; the native resolver does not.
export GRPC_DNS_RESOLVER=native
