#!/usr/bin/env python3
"""oomguard's layers: which src/ folder may include which. One table, two uses.

  layers.py sandbox SRC_DIR OUT_DIR   # meson, at configure time: OUT_DIR/<layer>/
                                      # holds symlinks to the folders <layer> may
                                      # include; each layer library compiles with
                                      # -I OUT_DIR/<layer> only, so a wrong
                                      # include fails the build
  layers.py check SRC_DIR             # meson test 'layers': every #include "..."
                                      # in src/ against the table

Arrows point down: a layer includes only itself and the layers listed for it.
Of the app, only main.cpp and the wiring include src/bus.
"""
import os
import re
import sys

# layer -> the folders it may include besides itself (what a sandbox holds).
LAYERS = {
    "util": [],
    "core": ["util"],
    "sensors": ["core", "util"],
    "policy": ["sensors", "core", "util"],
    "config": ["sensors", "core", "util"],
    "actions": ["core", "util"],
    "cgroup": ["config", "sensors", "core", "util"],
    "audit": ["sensors", "core", "util"],
    "service": ["config", "sensors", "core", "util"],
    "bus": ["config", "core", "util"],
    "ctl": ["bus", "core", "util"],
}
# The app (src/daemon.*, src/main.cpp, src/app/) may include everything.
APP = "app"
# In the app, only these include the bus (the D-Bus side stays out of the loop).
BUS_USERS = {"main.cpp", "app/wiring.hpp", "app/wiring.cpp"}
# Includes every layer may use: generated at configure time in the build root.
ANYWHERE = {"oomguard_build_config.h"}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(rel):
    """The layer of a path relative to src/ ('cgroup/kmsg.cpp' -> 'cgroup')."""
    head = rel.split("/", 1)[0]
    return head if head in LAYERS else APP


def sandbox(src, out):
    for layer, allowed in LAYERS.items():
        d = os.path.join(out, layer)
        os.makedirs(d, exist_ok=True)
        for name in os.listdir(d):
            os.unlink(os.path.join(d, name))
        for folder in [layer] + allowed:
            os.symlink(os.path.join(src, folder), os.path.join(d, folder))


def check(src):
    problems = []
    for root, _, files in os.walk(src):
        for f in sorted(files):
            if not f.endswith((".hpp", ".cpp", ".h")):
                continue
            path = os.path.join(root, f)
            rel = os.path.relpath(path, src)
            me = layer_of(rel)
            here = os.path.dirname(rel)
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
            for m in INCLUDE.finditer(text):
                inc = m.group(1)
                if inc in ANYWHERE:
                    continue
                if "/" not in inc:
                    if os.path.exists(os.path.join(root, inc)):
                        target = layer_of(os.path.join(here, inc))  # beside it
                    else:
                        # Through a folder's own include dir (src/bus for the D-Bus
                        # glue), a generated header beside it, or src/ itself.
                        owners = [l for l in LAYERS if os.path.exists(os.path.join(src, l, inc))]
                        target = owners[0] if owners else me if inc.endswith(".h") else APP
                else:
                    target = layer_of(os.path.normpath(os.path.join(here, inc))
                                      if inc.startswith("..") else inc)
                if me == APP and target == "bus" and rel not in BUS_USERS:
                    pass  # a problem: below
                elif me == APP or target == me or target in LAYERS.get(me, []):
                    continue
                line = text.count("\n", 0, m.start()) + 1
                problems.append(f"src/{rel}:{line}: {me} must not include \"{inc}\" ({target})")
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} include(s) against the layers (tools/layers.py LAYERS)")
        return 1
    print("layers OK: " + ", ".join(f"{k} -> {' '.join(v) or '-'}" for k, v in LAYERS.items()))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "sandbox":
        sandbox(os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3]))
    elif len(sys.argv) == 3 and sys.argv[1] == "check":
        sys.exit(check(os.path.abspath(sys.argv[2])))
    else:
        sys.exit(__doc__)
