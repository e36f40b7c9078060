#!/usr/bin/env python3
"""Validates packaging/grafana/oomguard.json (issue 15): the JSON loads, every
panel has queries, every query (and the annotation's) parses as PromQL with
Grafana's variables filled in (each wrapped as a recording rule for
`promtool check rules`), and every oomguard_* metric it names is one oomguard
writes (src/service/metrics.cpp), so a renamed metric cannot leave a dashboard
silently empty. The shipped alert rules are held to the same metric check.
Exit 77 (SKIP) only when promtool is missing."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

SRC = os.environ.get("OOMGUARD_SOURCE_DIR",
                     os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DASHBOARD = os.path.join(SRC, "packaging/grafana/oomguard.json")
RULES = os.path.join(SRC, "packaging/prometheus/oomguard.rules.yml")
METRICS_CPP = os.path.join(SRC, "src/service/metrics.cpp")
# Families the rules may name before oomguard exports them (see the rule's comment).
RESERVED = {"oomguard_audit_findings"}
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h",
                "${__range}": "1h", "$instance": ".*", "${instance}": ".*"}


def exprs_of(dash):
    out = []
    for p in dash["panels"]:
        targets = p.get("targets") or []
        if not targets:
            raise SystemExit(f"panel {p.get('id')} '{p.get('title')}' has no queries")
        for t in targets:
            if not t.get("expr", "").strip():
                raise SystemExit(f"panel '{p['title']}' target {t.get('refId')} has no expr")
            out.append((f"panel {p['id']} '{p['title']}' {t.get('refId')}", t["expr"]))
    for a in dash.get("annotations", {}).get("list", []):
        if a.get("expr"):
            out.append((f"annotation '{a['name']}'", a["expr"]))
    return out


def fill(expr):
    for k in sorted(GRAFANA_VARS, key=len, reverse=True):
        expr = expr.replace(k, GRAFANA_VARS[k])
    if "$" in expr:
        raise SystemExit(f"unknown Grafana variable in: {expr}")
    return expr


def main():
    promtool = shutil.which("promtool")
    if not promtool:
        print("SKIP: promtool not installed (apt-get install prometheus)")
        return 77
    with open(DASHBOARD) as f:
        dash = json.load(f)
    exprs = exprs_of(dash)
    with open(METRICS_CPP) as f:
        exported = set(re.findall(r'"(oomguard_[a-z0-9_]+)', f.read()))
    with open(RULES) as f:
        rule_metrics = set(re.findall(r"\b(oomguard_[a-z0-9_]+)", f.read()))
    bad = []
    for where, e in exprs:
        for m in re.findall(r"\b(oomguard_[a-z0-9_]+)", e):
            if m not in exported:
                bad.append(f"{where}: {m} is not written by oomguard")
    for m in sorted(rule_metrics - exported - RESERVED):
        bad.append(f"{os.path.basename(RULES)}: {m} is not written by oomguard")
    if bad:
        print("\n".join(bad))
        return 1
    # JSON is YAML: one recording rule per query.
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": fill(e)} for i, (_, e) in enumerate(exprs)]}]}
    with tempfile.TemporaryDirectory(prefix="oomguard-dash-") as d:
        path = os.path.join(d, "dashboard.rules.yml")
        with open(path, "w") as f:
            json.dump(rules, f, indent=1)
        r = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True)
        if r.returncode != 0:
            # Name the panel of the query promtool rejected.
            print(r.stdout + r.stderr)
            for i, (where, e) in enumerate(exprs):
                one = {"groups": [{"name": "q", "rules": [{"record": "q:x", "expr": fill(e)}]}]}
                with open(path, "w") as f:
                    json.dump(one, f)
                if subprocess.run([promtool, "check", "rules", path],
                                  capture_output=True).returncode != 0:
                    print(f"does not parse: {where}: {e}")
            return 1
    print(f"{len(dash['panels'])} panels, {len(exprs)} queries: JSON loads, every query parses "
          f"as PromQL, every oomguard_* metric named exists")
    return 0


if __name__ == "__main__":
    sys.exit(main())
