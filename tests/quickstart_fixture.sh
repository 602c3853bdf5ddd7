# Sourced by the tests that run tools/quickstart.sh: a state directory under a private (0700)
# parent, as a checkout in /root or a mktemp -d would be (PostgreSQL, running as its own user,
# cannot reach it, and quickstart must cope), torn down on exit; and `fail`.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PRIVATE="$(mktemp -d /tmp/gantry-qs-XXXXXX)"
STATE="$PRIVATE/checkout/.gantry"
export GANTRY_QUICKSTART_DIR="$STATE" GANTRY_SKIP_DEPS=1 GANTRY_SKIP_BUILD=1 GANTRY_QUICKSTART_API_PORT=0
cleanup() {
  "$ROOT/tools/quickstart.sh" down >/dev/null 2>&1 || true
  "$ROOT/tools/lib/throwaway-pg.sh" purge "$STATE/pg" >/dev/null 2>&1 || true
  rm -rf "$PRIVATE"
  # Where quickstart puts the sessions' homes when it runs as root (outside the private parent).
  rm -rf "/tmp/gantry-quickstart-sessions-$(printf '%s' "$STATE" | sha256sum | cut -c1-12)"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
