#!/usr/bin/env python3
"""Fails when a test case's name cannot be run by itself under ctest.

catch_discover_tests registers each Catch test case as a ctest test under its name, and CMake
reads a ";" in it as a list separator: the case becomes two tests that each match nothing and
fail with "No tests ran" (it happened, with a name joining two clauses by a semicolon).
"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
files = sorted(root.glob("tests/**/*.cc")) + sorted(root.glob("tools/bench/*.cc"))
literal = r'"(?:[^"\\]|\\.)*"'
case = re.compile(r"TEST_CASE\(\s*((?:" + literal + r"\s*)+)")
names, bad = 0, []
for path in files:
    for match in case.finditer(path.read_text()):
        name = "".join(re.findall(literal, match.group(1)))
        name = "".join(part[1:-1] for part in re.findall(literal, name))
        names += 1
        if ";" in name:
            bad.append(f"{path.relative_to(root)}: {name}")
for b in bad:
    print(f"a \";\" in a test case's name splits it in two under ctest: {b}")
if names == 0:
    print("no test cases found: the scan is broken")
    sys.exit(1)
print(f"{names} test case names, {len(bad)} with a \";\"")
sys.exit(1 if bad else 0)
