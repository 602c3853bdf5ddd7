#!/usr/bin/env bash
# A throwaway PostgreSQL 15 server for development and tests.
#   throwaway-pg.sh start DIR PORT [IP]
#                                    initialise (once) and start; prints the DSN. With IP, it also
#                                    listens there, trusting its directly connected subnets (for a
#                                    test's network namespace behind a veth)
#   throwaway-pg.sh stop DIR         stop it (fast shutdown)
#   throwaway-pg.sh purge DIR        stop it and remove its stand-in directory, if any
#   throwaway-pg.sh dsn DIR PORT     print the DSN
# PostgreSQL refuses to run as root, so as root the server runs as the postgres user; if DIR is
# out of that user's reach, a stand-in under /var/tmp holds the cluster (DIR/location names it).
# DIR must be short: the socket path is limited.
set -euo pipefail

PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
cmd="${1:?usage: throwaway-pg.sh start|stop|purge|dsn DIR [PORT]}"
dir="${2:?DIR required}"

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# As root, the cluster must be somewhere the postgres user can reach. When DIR is not (it lies
# under a private directory such as a mktemp -d or /root), the cluster lives in a stand-in
# under /var/tmp and DIR/location says where; every command below goes through it.
mkdir -p "$dir"
if [ -f "$dir/location" ]; then
  dir="$(cat "$dir/location")"
elif [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$dir"; then
  standin="/var/tmp/gantry-pg-$(printf '%s' "$(cd "$dir" && pwd)" | sha256sum | cut -c1-16)"
  mkdir -p "$standin"
  echo "$standin" > "$dir/location"
  dir="$standin"
fi

dsn() { echo "host=$dir/sock port=$1 user=postgres dbname=postgres connect_timeout=5"; }

case "$cmd" in
  start)
    port="${3:?PORT required}"
    mkdir -p "$dir/data" "$dir/sock"
    if [ "$(id -u)" -eq 0 ]; then chown -R postgres:postgres "$dir"; fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    listen=127.0.0.1
    if [ -n "${4:-}" ]; then
      listen="127.0.0.1,$4"
      grep -q '^host all all samenet trust' "$dir/data/pg_hba.conf" \
        || echo 'host all all samenet trust' | as_pg tee -a "$dir/data/pg_hba.conf" >/dev/null
    fi
    if ! as_pg "$PGBIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-p $port -k $dir/sock -c listen_addresses=$listen -c fsync=on -c max_connections=200" start >/dev/null \
        || { tail -20 "$dir/server.log" >&2; exit 1; }
    fi
    dsn "$port"
    ;;
  stop)
    if [ -f "$dir/data/PG_VERSION" ]; then
      as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    ;;
  purge)
    # Stop, then remove a /var/tmp stand-in (callers remove DIR itself).
    if [ -f "$dir/data/PG_VERSION" ]; then
      as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    case "$dir" in /var/tmp/gantry-pg-*) rm -rf "$dir" ;; esac
    ;;
  dsn)
    dsn "${3:?PORT required}"
    ;;
  *)
    echo "unknown command $cmd" >&2; exit 2 ;;
esac
