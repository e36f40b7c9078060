#!/usr/bin/env python3
"""oomguard's layers: which src/ folder may include which. One table, two uses.

  layers.py sandbox SRC_DIR OUT_DIR   # meson, at configure time: OUT_DIR/<layer>/
                                      # holds symlinks to the folders <layer> may
                                      # include; each layer library compiles with
                                      # -I OUT_DIR/<layer> only, so a wrong
                                      # include fails the build
  layers.py check SRC_DIR             # meson test 'layers': every #include "..."
                                      # in src/ against the table
  layers.py enforce SRC_DIR OUT_DIR BUILD_ROOT CXX...
                                      # meson test 'layer-sandboxes': through each
                                      # sandbox, a header of every folder the layer
                                      # may not include fails to preprocess, and one
                                      # of every folder it may include works; and
                                      # the real compile commands of each layer
                                      # library put no other source folder (not the
                                      # source root) on its include path

Arrows point down: a layer includes only itself and the layers listed for it.
Of the app, only main.cpp includes src/bus.
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
# In the app, only these include the bus (the D-Bus side stays out of the loop):
# the app library's sandbox (OUT_DIR/app) has no bus/ or ctl/ in it.
BUS_USERS = {"main.cpp"}
BUS_LAYERS = {"bus", "ctl"}
# Includes every layer may use: generated at configure time in the build root.
ANYWHERE = {"oomguard_build_config.h"}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(rel):
    """The layer of a path relative to src/ ('cgroup/kmsg.cpp' -> 'cgroup')."""
    head = rel.split("/", 1)[0]
    return head if head in LAYERS else APP


def may_include(layer):
    """The folders a layer (or the app, but for its bus users) may include."""
    if layer == APP:
        return {l for l in LAYERS if l not in BUS_LAYERS}
    return {layer, *LAYERS[layer]}


def sandbox(src, out):
    # The app library's sandbox also holds the app's own folder and headers in
    # src/ (daemon.hpp); main.cpp alone compiles with all of src/.
    app_own = [APP] + sorted(f for f in os.listdir(src) if f.endswith(".hpp"))
    for layer in list(LAYERS) + [APP]:
        d = os.path.join(out, layer)
        os.makedirs(d, exist_ok=True)
        for name in os.listdir(d):
            os.unlink(os.path.join(d, name))
        for entry in sorted(may_include(layer)) + (app_own if layer == APP else []):
            os.symlink(os.path.join(src, entry), os.path.join(d, entry))


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


def preprocess(cxx, sandbox_dir, build_root, header):
    """(ok, stderr) of preprocessing '#include "header"' through one sandbox."""
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as cwd:  # no quote-include from here
        r = subprocess.run(cxx + ["-std=c++20", "-E", "-x", "c++", "-o", os.devnull,
                                  "-I", sandbox_dir, "-I", build_root, "-"],
                           input=f'#include "{header}"\n', capture_output=True,
                           text=True, cwd=cwd)
    return r.returncode == 0, r.stderr


def include_paths(src, build_root):
    """(compile commands checked, problems): each layer library's -I paths, from
    compile_commands.json, are in the build tree or the source folders the layer
    may include. Not the source root or src/: '#include "src/daemon.hpp"' would
    get past the sandbox."""
    import json
    import shlex
    src, build_root = os.path.realpath(src), os.path.realpath(build_root)
    root = os.path.dirname(src)
    with open(os.path.join(build_root, "compile_commands.json")) as f:
        commands = json.load(f)
    lib = re.compile(r"liboomguard_([a-z]+)(?:_sdbus)?\.a\.p/")
    checked, problems = 0, []
    for c in commands:
        m = lib.search(c["command"])
        if not m or (m.group(1) not in LAYERS and m.group(1) != APP):
            continue
        layer = m.group(1)
        allowed = {os.path.join(src, l) for l in may_include(layer)}
        checked += 1
        args = shlex.split(c["command"])
        paths = []
        for i, a in enumerate(args):
            for flag in ("-I", "-isystem", "-iquote", "-idirafter"):
                if a == flag and i + 1 < len(args):
                    paths.append(args[i + 1])
                elif a.startswith(flag) and a != flag:
                    paths.append(a[len(flag):])
        for path in paths:
            path = os.path.realpath(os.path.join(c["directory"], path))
            in_build = path == build_root or path.startswith(build_root + os.sep)
            in_source = path == root or path.startswith(root + os.sep)
            if in_source and not in_build and path not in allowed:
                problems.append(f"{layer}: {os.path.relpath(c['file'], c['directory'])} "
                                f"compiles with -I {path}, a source folder outside its sandbox")
    if checked == 0:
        problems.append("no layer library in compile_commands.json")
    return checked, problems


def enforce(src, out, build_root, cxx):
    from concurrent.futures import ThreadPoolExecutor
    headers = {l: sorted(f for f in os.listdir(os.path.join(src, l)) if f.endswith(".hpp"))
               for l in LAYERS}
    jobs = []  # (layer, folder, may include it), from the table, not the sandbox
    for layer in list(LAYERS) + [APP]:
        inside = may_include(layer)
        for folder in LAYERS:
            if headers[folder]:
                jobs.append((layer, folder, folder in inside))

    def run(job):
        layer, folder, allowed = job
        box = os.path.join(out, layer)
        if not allowed:
            h = f"{folder}/{headers[folder][0]}"
            ok, err = preprocess(cxx, box, build_root, h)
            if ok or h not in err:
                return f"{layer}: #include \"{h}\" was found through its sandbox"
            return None
        errs = []
        for name in headers[folder]:  # one that preprocesses on its own is enough
            ok, err = preprocess(cxx, box, build_root, f"{folder}/{name}")
            if ok:
                return None
            errs.append(err.strip().splitlines()[0] if err.strip() else name)
        return f"{layer}: no header of {folder}/ preprocesses through its sandbox ({errs[0]})"

    with ThreadPoolExecutor(max_workers=2) as pool:
        problems = [p for p in pool.map(run, jobs) if p]
    flag_checks, flag_problems = include_paths(src, build_root)
    problems += flag_problems
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problems in {len(jobs)} sandbox checks and "
              f"{flag_checks} compile commands")
        return 1
    denied = sum(1 for j in jobs if not j[2])
    print(f"layer sandboxes OK: {len(jobs)} checks, {denied} includes refused, "
          f"{flag_checks} compile commands with no source folder outside their sandbox "
          f"(the app's: {', '.join(j[1] for j in jobs if j[0] == APP and not j[2])})")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "sandbox":
        sandbox(os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3]))
    elif len(sys.argv) >= 6 and sys.argv[1] == "enforce":
        sys.exit(enforce(*(os.path.abspath(a) for a in sys.argv[2:5]), sys.argv[5:]))
    elif len(sys.argv) == 3 and sys.argv[1] == "check":
        sys.exit(check(os.path.abspath(sys.argv[2])))
    else:
        sys.exit(__doc__)
