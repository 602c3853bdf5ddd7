#!/usr/bin/env bash
# Installs the third-party clients the HTTP gateway's tests drive (the `openai` and `ws` npm
# packages, pinned by package-lock.json) into DIR, once: under a lock, so tests starting together
# share one install, and again only when the lock file changes; with the client scripts beside
# them (an ES module finds its packages from where it lies, not through NODE_PATH). Prints DIR.
set -euo pipefail
src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="$1"
mkdir -p "$dir"
exec 9>"$dir/.install-lock"
flock 9
if ! cmp -s "$src/package-lock.json" "$dir/installed-lock.json"; then
  cp "$src/package.json" "$src/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >&2
  cp "$src/package-lock.json" "$dir/installed-lock.json"
fi
cp "$src"/*.mjs "$dir/"
echo "$dir"
