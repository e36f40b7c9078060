#!/usr/bin/env python3
"""The shipped alert rules (issue 15): `promtool check rules` on the plain file
and on the PrometheusRule manifest's groups, the manifest is what
gen-prometheusrule.py makes of the plain file (same groups, parsed), and
`promtool test rules rules_test.yml` (each alert fires on its condition and
stays quiet otherwise). Exit 77 (SKIP) only when promtool is missing."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

SRC = os.environ.get("OOMGUARD_SOURCE_DIR",
                     os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PKG = os.path.join(SRC, "packaging/prometheus")
HERE = os.path.join(SRC, "tests/prometheus")


def run(argv):
    r = subprocess.run(argv, capture_output=True, text=True)
    print(f"$ {' '.join(os.path.relpath(a, SRC) if a.startswith(SRC) else a for a in argv)}\n"
          f"{r.stdout}{r.stderr}", end="")
    return r.returncode == 0


def main():
    promtool = shutil.which("promtool")
    if not promtool:
        print("SKIP: promtool not installed (apt-get install prometheus)")
        return 77
    ok = True
    plain = os.path.join(PKG, "oomguard.rules.yml")
    manifest = os.path.join(PKG, "oomguard.prometheusrule.yaml")
    ok &= run([sys.executable, os.path.join(PKG, "gen-prometheusrule.py"), "--check"])
    with open(plain) as f:
        groups = yaml.safe_load(f)
    with open(manifest) as f:
        m = yaml.safe_load(f)
    if m.get("kind") != "PrometheusRule" or m.get("apiVersion") != "monitoring.coreos.com/v1":
        print(f"{manifest}: not a monitoring.coreos.com/v1 PrometheusRule")
        ok = False
    if m.get("spec") != groups:
        print(f"{manifest}: spec differs from {plain}")
        ok = False
    ok &= run([promtool, "check", "rules", plain])
    with tempfile.TemporaryDirectory(prefix="oomguard-rules-") as d:
        spec = os.path.join(d, "manifest-spec.rules.yml")
        with open(spec, "w") as f:
            json.dump(m.get("spec", {}), f)
        ok &= run([promtool, "check", "rules", spec])
    ok &= run([promtool, "test", "rules", os.path.join(HERE, "rules_test.yml")])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
