#!/usr/bin/env python3
"""docs/openai.md against a live quickstart fleet: its curl commands run as written, and its Node
SDK and WebSocket examples run with the npm packages the gateway's tests use.

Usage: check_openai_doc.py DOC CLIENT_ENV CLIENTS_DIR   (CLIENTS_DIR: tests/openai/install.sh's)
"""
import os
import re
import subprocess
import sys

doc, client_env, clients = sys.argv[1:4]
text = open(doc).read()
failures = []


def section(title):
    start = text.index("\n## " + title)
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else len(text)]


def blocks(part, lang):
    return re.findall(r"```" + lang + r"\n(.*?)```", part, re.S)


def run(what, command, want):
    out = subprocess.run(command, capture_output=True, text=True, timeout=60)
    got = out.stdout + out.stderr
    missing = [w for w in want if w not in got]
    if out.returncode != 0 or missing:
        failures.append(f"{what}: exit {out.returncode}, missing {missing}:\n{got}")
    else:
        print(f"ok   {what}")


curl = blocks(section("curl"), "sh")
if len(curl) != 1:
    failures.append("the curl section has no single sh block")
else:
    run("the curl commands", ["bash", "-euo", "pipefail", "-c", f"source {client_env}\n{curl[0]}"],
        ['"object":"list"', '"id":"demo"', '"content":"hello"', '"content":" fleet"', "data: [DONE]"])

for name, (title, index), want in [("sdk_example.mjs", ("The OpenAI SDKs", 0), ["hello GPU fleet"]),
                                   ("ws_example.mjs", ("The WebSocket protocol", 0),
                                    ['"type":"token"', '"token":"hi"', '"type":"done"'])]:
    js = blocks(section(title), "js")
    if not js:
        failures.append(f"no js block under {title}")
        continue
    path = os.path.join(clients, name)
    open(path, "w").write(js[index])
    env_script = f"source {client_env}; NODE_EXTRA_CA_CERTS=$GANTRY_CA exec node {path}"
    run(f"the example under \"{title}\"", ["bash", "-euo", "pipefail", "-c", env_script], want)

for f in failures:
    print("FAIL " + f)
sys.exit(1 if failures else 0)
