#!/usr/bin/env python3
"""Fails when two test cases use the same process marker.

End-to-end tests start sessions such as `sleep 3600.4242` and then count the live processes
whose command line holds the marker. ctest runs test cases in parallel, so a marker shared by
two test cases lets one count the other's process: a flake that only shows on a busy runner
(one did, twice). Markers are `3600.` and four digits; each must belong to one test case, or to
one file's shared helpers (above its first test case) and that file's cases.
"""
import collections
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
files = sorted(root.glob("tests/e2e/*.cc")) + sorted(root.glob("tools/bench/*.cc"))
users = collections.defaultdict(list)
for path in files:
    # Everything after a TEST_CASE( up to the next one belongs to it (the helpers above the
    # first are shared by the file's cases on purpose).
    parts = re.split(r"\n(?=TEST_CASE\()", path.read_text())
    cases = parts[1:]
    # A marker in those helpers belongs to the file: no other file may use it.
    for marker in sorted(set(re.findall(r"\b3600\.\d{4}\b", parts[0]))):
        users[marker].append(f"{path.relative_to(root)}: (its shared helpers)")
    for case in cases:
        name = case.split('"')[1] if '"' in case else "?"
        for marker in sorted(set(re.findall(r"\b3600\.\d{4}\b", case))):
            users[marker].append(f"{path.relative_to(root)}: {name}")

# Shared: by two test cases, or by two files (a file's helpers and its own cases may share).
shared = {m: u for m, u in users.items()
          if len(u) > 1 and not (len({x.split(":")[0] for x in u}) == 1 and any("(its shared helpers)" in x for x in u))}
for marker, cases in sorted(shared.items()):
    print(f"marker {marker} is used by {len(cases)} test cases:")
    for case in cases:
        print(f"  {case}")
if not users:
    print("no markers found: the scan is broken")
    sys.exit(1)
print(f"{len(users)} markers, {len(shared)} shared")
sys.exit(1 if shared else 0)
