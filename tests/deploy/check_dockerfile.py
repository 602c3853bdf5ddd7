#!/usr/bin/python3
"""What can be checked of deploy/docker/Dockerfile without a container engine.

usage: check_dockerfile.py DOCKERFILE REPO_ROOT BUILD_DIR

- every file the build stage copies from the repository exists, and every binary a runtime
  stage copies from the build stage is one this CMake build produces;
- base images are pinned by a version tag;
- each image runs as a non-root numeric user and installs no compiler;
- the runtime packages of each image cover every library its binaries link (`ldd` here, each
  library's Debian package by `dpkg -S`, and what the listed packages pull in by their
  dependencies); Debian slim's own packages (apt's and dpkg's dependencies) count as present.
Prints one line per check and "N passed, N failed".
"""
import os
import re
import subprocess
import sys

dockerfile, root, build = sys.argv[1:4]
passed, failed = 0, 0


def check(ok, what):
    global passed, failed
    print(("ok   " if ok else "FAIL ") + what)
    passed, failed = passed + (1 if ok else 0), failed + (0 if ok else 1)


# Instructions, with continuation lines joined.
text = re.sub(r"\\\n", " ", open(dockerfile).read())
stages = {}  # name -> {"from": parent, "packages": set, "copies": [...], "user": str, "entrypoint": bool}
current = None
for line in text.splitlines():
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    word, _, rest = line.partition(" ")
    word = word.upper()
    if word == "FROM":
        m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
        image, name = m.group(1), m.group(2) or m.group(1)
        current = stages[name] = {"from": image, "packages": set(), "copies": [], "user": None, "entrypoint": False}
        if image not in stages:
            check(re.search(r":[\w.-]*\d", image) is not None and not image.endswith(":latest"),
                  f"base image {image} is pinned by a version tag")
    elif word == "RUN" and "apt-get install" in rest:
        for segment in rest.split("&&"):
            if "apt-get install" in segment:
                current["packages"].update(w for w in segment.split("install", 1)[1].split() if not w.startswith("-"))
    elif word == "COPY":
        args = rest.split()
        source_stage = next((a.split("=", 1)[1] for a in args if a.startswith("--from=")), None)
        paths = [a for a in args if not a.startswith("--")]
        current["copies"].append((source_stage, paths[:-1], paths[-1]))
    elif word == "USER":
        current["user"] = rest.strip()
    elif word == "ENTRYPOINT":
        current["entrypoint"] = True


def chain(name):
    """The stage and its parents, nearest first."""
    out = []
    while name in stages:
        out.append(stages[name])
        name = stages[name]["from"]
    return out


# Sources from the repository exist; binaries from the build stage are this build's outputs.
for name, stage in stages.items():
    for source_stage, sources, _ in stage["copies"]:
        for source in sources:
            if source_stage is None:
                check(os.path.exists(os.path.join(root, source)), f"{name}: copies {source}, which exists")
            elif source_stage == "build" and source.startswith("/src/build/"):
                check(os.path.isfile(os.path.join(build, source[len("/src/build/"):])),
                      f"{name}: copies {source}, which this build produces")


# Every installed package's dependencies, read once.
_depends = {}
for row in subprocess.run(["dpkg-query", "-W", "-f=${Package}\t${Depends}, ${Pre-Depends}\n"],
                          capture_output=True, text=True).stdout.splitlines():
    package, _, deps = row.partition("\t")
    _depends[package] = [re.sub(r"\(.*?\)", "", d).strip().split(":")[0] for d in re.split(r"[,|]", deps)]


def installed_closure(packages):
    """The packages and, recursively, their installed dependencies (dpkg's own records)."""
    seen, todo = set(), list(packages)
    while todo:
        p = todo.pop()
        if p in seen or p not in _depends:
            continue  # seen, or a virtual package / not installed here
        seen.add(p)
        todo.extend(d for d in _depends[p] if d and d not in seen)
    return seen


_owners = {}


def spellings(library):
    """A library's path as dpkg may record it (usr-merged systems: with and without /usr)."""
    names = {library, os.path.realpath(library)}
    return names | {"/usr" + p for p in names if not p.startswith("/usr/")}


def learn_owners(libraries):
    """One dpkg -S call for every spelling of every library (dpkg -S is slow per call)."""
    unknown = sorted({p for lib in libraries for p in spellings(lib)} - set(_owners))
    if unknown:
        q = subprocess.run(["dpkg", "-S"] + unknown, capture_output=True, text=True)
        for line in q.stdout.splitlines():
            package, _, path = line.partition(": ")
            _owners[path.strip()] = package.split(":")[0]
        for p in unknown:
            _owners.setdefault(p, None)


def package_of(library):
    learn_owners([library])
    return next((_owners[p] for p in spellings(library) if _owners.get(p)), None)


def linked(binary):
    return re.findall(r"=> (/\S+)", subprocess.run(["ldd", binary], capture_output=True, text=True).stdout)


slim = installed_closure(["apt", "dpkg", "libc6", "libgcc-s1", "libstdc++6"])
learn_owners([lib for stage in stages.values() for source_stage, sources, _ in stage["copies"] for source in sources
              if source_stage == "build" and os.path.isfile(os.path.join(build, source[len("/src/build/"):]))
              for lib in linked(os.path.join(build, source[len("/src/build/"):]))])
compilers = {"gcc", "g++", "clang", "build-essential", "cmake", "make", "cpp"}
for name, stage in stages.items():
    if not stage["entrypoint"]:
        continue
    user = stage["user"] or ""
    check(re.fullmatch(r"[1-9]\d*(:\d+)?", user) is not None, f"{name}: runs as non-root uid ({user or 'no USER'})")
    packages = set().union(*(s["packages"] for s in chain(name)))
    check(not (packages & compilers), f"{name}: installs no compiler")
    provided = installed_closure(packages) | slim
    for source_stage, sources, _ in stage["copies"]:
        for source in sources:
            if source_stage != "build":
                continue
            binary = os.path.join(build, source[len("/src/build/"):])
            if not os.path.isfile(binary):
                continue
            needed = {package_of(lib) or f"?{lib}" for lib in linked(binary)}
            missing = sorted(p for p in needed if p not in provided)
            check(not missing, f"{name}: {os.path.basename(binary)} links only what the image installs"
                               + (f" (missing: {' '.join(missing)})" if missing else ""))

print(f"dockerfile: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
