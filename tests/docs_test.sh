#!/usr/bin/env bash
# The docs, exercised against a live quickstart fleet so they stay true: the README's two tours
# (gantryctl and grpcurl), every command in docs/grpcurl.md, the Python and Go clients of
# docs/clients.md, the curl and Node examples of docs/openai.md, and every gantryctl command
# named in docs/gantryctl.md.
set -euo pipefail
# shellcheck source=quickstart_fixture.sh
source "$(dirname "${BASH_SOURCE[0]}")/quickstart_fixture.sh"
passed=0

"$ROOT/tools/quickstart.sh" >"$PRIVATE/quickstart.log" 2>&1 || { cat "$PRIVATE/quickstart.log"; fail "quickstart.sh"; }
export PATH="$ROOT/tests/docs/bin:$PATH"   # grpcurl (the reflection shim)

# A README block after its "<!-- tour: NAME" marker, run as written, from a directory where
# .gantry/ is the quickstart's state.
tour() {
  awk -v name="$1" '$0 ~ "<!-- tour: " name {found=1; next} found && /^```sh/ {inside=1; next}
                    inside && /^```/ {exit} inside {print}' "$ROOT/README.md"
}
for name in gantryctl grpcurl; do
  script="$(tour "$name")"
  [ -n "$script" ] || fail "README has no $name tour"
  (cd "$(dirname "$STATE")" && bash -euo pipefail -c "$script") >"$PRIVATE/tour-$name.log" 2>&1 \
    || { cat "$PRIVATE/tour-$name.log"; fail "README $name tour"; }
  passed=$((passed + 1))
done
grep -q "hello from GPU-" "$PRIVATE/tour-gantryctl.log" || { cat "$PRIVATE/tour-gantryctl.log"; fail "tour: no session output"; }
grep -q "^stream some tokens back $" "$PRIVATE/tour-gantryctl.log" || fail "tour: no invoke output"

/usr/bin/python3 "$ROOT/tests/docs/check_grpcurl_doc.py" "$ROOT/docs/grpcurl.md" "$STATE/client.env" \
  || fail "docs/grpcurl.md"
passed=$((passed + 1))

# docs/openai.md: its curl commands and its Node examples, with the npm packages the gateway's
# tests use.
clients="$("$ROOT/tests/openai/install.sh" "${GANTRY_BUILD_DIR:-$ROOT/build}/openai-clients")" || fail "npm clients"
/usr/bin/python3 "$ROOT/tests/docs/check_openai_doc.py" "$ROOT/docs/openai.md" "$STATE/client.env" "$clients" \
  || fail "docs/openai.md"
passed=$((passed + 1))

# shellcheck disable=SC1091
source "$STATE/client.env"
out="$(/usr/bin/python3 "$ROOT/docs/examples/python_client.py")" || { echo "$out"; fail "docs/examples/python_client.py"; }
for want in "phase: SESSION_PHASE_RUNNING" "log: hello from GPU-" "invoke: tokens from a GPU worker" \
            "error: NOT_FOUND:" "deleted: SESSION_PHASE_TERMINATED"; do
  grep -q "$want" <<<"$out" || { echo "$out"; fail "python client: no \"$want\""; }
done
passed=$((passed + 1))

# The Go client of docs/clients.md, built as the doc says (Debian's Go packages, GOPATH mode),
# must print the same as the Python one. Its build cache is kept between runs.
OUT="$PRIVATE/go" GOCACHE="${XDG_CACHE_HOME:-$HOME/.cache}/gantry/go-build" \
  "$ROOT/docs/examples/go_client/build.sh" >"$PRIVATE/go-build.log" 2>&1 || { cat "$PRIVATE/go-build.log"; fail "docs/examples/go_client/build.sh"; }
out="$("$PRIVATE/go/gantry-client")" || { echo "$out"; fail "docs/examples/go_client"; }
for want in "phase: SESSION_PHASE_RUNNING" "log: hello from GPU-" "invoke: tokens from a GPU worker" \
            "error: NotFound:" "deleted: SESSION_PHASE_TERMINATED"; do
  grep -q "$want" <<<"$out" || { echo "$out"; fail "go client: no \"$want\""; }
done
passed=$((passed + 1))
# Both examples cleaned up after themselves: nothing of theirs is left running.
left="$({ gantryctl list -l example=python --phase running -o name; gantryctl list -l example=go --phase running -o name; } | wc -l)"
[ "$left" = 0 ] || fail "an example left $left session(s) running"

# Every command gantryctl has is documented (its own completion lists them).
for word in $(gantryctl __complete); do
  # A command completes flags; a group, its subcommands.
  subcommands="$(gantryctl __complete "$word")"
  # (A here-string, not `echo | grep -q`: under pipefail, grep leaving early SIGPIPEs a long
  # echo, such as "get" followed by the fleet's session ids, and the test failed for it.)
  if grep -q '^--' <<<"$subcommands"; then subcommands=""; fi
  for command in ${subcommands:-""}; do
    name="$word${command:+ $command}"
    grep -qF "$name" "$ROOT/docs/gantryctl.md" || fail "docs/gantryctl.md does not mention \"$name\""
  done
done
passed=$((passed + 1))
echo "docs: $passed passed, 0 failed"
