#!/usr/bin/python3
"""Runs every grpcurl command in docs/grpcurl.md against a live fleet and checks it still
answers as the doc shows.

usage: check_grpcurl_doc.py DOC CLIENT_ENV [--fill]

Each ```sh block that starts with `grpcurl` is run by bash, with the doc's other ```sh blocks
(its set-up: TLS=..., AUTH=...) before it and `grpcurl` being tests/docs/grpcurl_shim.py
(grpcurl itself is not packaged in Debian 12). The block after it shows the output: a call the
doc shows succeeding must succeed and print at least the fields shown; a call shown failing
must fail with the same code. Ids the examples pass on ($SESSION_ID, $CONTROLLER_ID,
$KEY_ID) are taken from the outputs that create them, as a reader would copy them.
--fill rewrites the output blocks with what the fleet printed (to refresh the doc).
"""
import json
import os
import re
import subprocess
import sys

doc_path, client_env = sys.argv[1], sys.argv[2]
fill = "--fill" in sys.argv
here = os.path.dirname(os.path.abspath(__file__))

env = dict(os.environ)
for line in open(client_env):
    m = re.match(r"export (\w+)=(.*)$", line.strip())
    if m:
        env[m.group(1)] = os.path.expandvars(m.group(2).strip('"'))
env["PATH"] = os.path.join(here, "bin") + ":" + env["PATH"]  # grpcurl: the shim

# Which output names the ids later examples use.
EXTRACT = {
    "SessionService/CreateSession": ("SESSION_ID", lambda o: o["id"]),
    "AdminService/ListControllers": ("CONTROLLER_ID", lambda o: o["controllers"][0]["id"]),
    "AdminService/CreateApiKey": ("KEY_ID", lambda o: o["keyId"]),
}

text = open(doc_path).read()
blocks = list(re.finditer(r"```(\w*)\n(.*?)```\n", text, re.S))
# The set-up blocks, less `source` lines: the environment comes from CLIENT_ENV.
setup = "\n".join(line for b in blocks if b.group(1) == "sh" and not b.group(2).startswith("grpcurl")
                  for line in b.group(2).splitlines() if not line.startswith("source "))


def objects(output):
    """The JSON objects grpcurl printed, one per response."""
    found, decoder, rest = [], json.JSONDecoder(), output.strip()
    while rest:
        obj, end = decoder.raw_decode(rest)
        found.append(obj)
        rest = rest[end:].strip()
    return found


failures, checked, replacements = [], 0, []
for i, block in enumerate(blocks):
    if block.group(1) != "sh" or not block.group(2).startswith("grpcurl"):
        continue
    command = block.group(2)
    shown = blocks[i + 1] if i + 1 < len(blocks) and blocks[i + 1].group(1) in ("json", "text") else None
    run = subprocess.run(["bash", "-c", setup + "\n" + command], env=env, capture_output=True, text=True, timeout=60)
    output = run.stdout + run.stderr
    checked += 1
    method = re.search(r"gantry\.v1\.(\w+/\w+)", command)
    if run.returncode == 0 and method and method.group(1) in EXTRACT:
        name, pick = EXTRACT[method.group(1)]
        env[name] = pick(objects(run.stdout)[0])
    if shown is None:
        failures.append(f"no output block after: {command.strip()}")
        continue
    if fill:
        replacements.append((shown.start(2), shown.end(2), output if output.endswith("\n") else output + "\n"))
        continue
    expected = shown.group(2)
    if expected.startswith("ERROR:"):
        want = re.search(r"Code: (\w+)", expected).group(1)
        got = re.search(r"Code: (\w+)", output)
        if run.returncode == 0 or not got or got.group(1) != want:
            failures.append(f"expected {want}: {command.strip()}\n{output}")
        continue
    if run.returncode != 0:
        failures.append(f"failed: {command.strip()}\n{output}")
        continue
    if shown.group(1) == "json":
        want_keys = set(objects(expected)[0]) if objects(expected) else set()
        got_objects = objects(run.stdout)
        got_keys = set(got_objects[0]) if got_objects else set()
        if not want_keys <= got_keys:
            failures.append(f"fields {sorted(want_keys - got_keys)} missing from: {command.strip()}\n{output}")
    elif expected.strip() and expected.strip() not in output:
        failures.append(f"expected {expected.strip()!r} in the output of: {command.strip()}\n{output}")

if fill:
    for start, end, new in reversed(replacements):
        text = text[:start] + new + text[end:]
    open(doc_path, "w").write(text)
for f in failures:
    print("FAIL:", f)
print(f"grpcurl doc: {checked - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
