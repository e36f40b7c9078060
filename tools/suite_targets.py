#!/usr/bin/env python3
"""Prints the ninja targets (paths relative to BUILD_DIR) that the tests of the
given meson suites need, so a second build dir (ASan) compiles only those.
Usage: suite_targets.py BUILD_DIR SUITE..."""
import json, os, subprocess, sys

build, suites = sys.argv[1], set(sys.argv[2:])
def introspect(what):
    return json.loads(subprocess.check_output(["meson", "introspect", build, what]))
files = {t["id"]: t["filename"] for t in introspect("--targets")}
need = set()
for t in introspect("--tests"):
    if not any(s.split(":")[-1] in suites for s in t["suite"]):
        continue
    for dep in t.get("depends", []):
        for f in files.get(dep, []):
            need.add(os.path.relpath(f, os.path.abspath(build)))
    cmd0 = t["cmd"][0]
    if cmd0.startswith(os.path.abspath(build)):
        need.add(os.path.relpath(cmd0, os.path.abspath(build)))
print("\n".join(sorted(need)))
