#!/usr/bin/env python3
"""Writes oomguard.prometheusrule.yaml (a prometheus-operator PrometheusRule)
from oomguard.rules.yml, the one source of the rules: the groups are copied
verbatim, comments included. `--check` exits 1 when the committed manifest
differs from what this would write (the prometheus test suite runs it)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "oomguard.rules.yml")
TARGET = os.path.join(HERE, "oomguard.prometheusrule.yaml")

HEADER = """\
# GENERATED from oomguard.rules.yml by gen-prometheusrule.py; do not edit.
# Which PrometheusRules a Prometheus loads is its ruleSelector: current
# kube-prometheus has ruleSelector: {} (all of them); older releases match the
# labels prometheus: k8s, role: alert-rules below; kube-prometheus-stack (Helm)
# matches release: <release name> unless ruleSelectorNilUsesHelmValues=false.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: oomguard
  namespace: monitoring
  labels:
    app.kubernetes.io/name: oomguard
    prometheus: k8s
    role: alert-rules
spec:
"""


def render():
    with open(SOURCE) as f:
        lines = f.read().splitlines()
    # Drop the file's leading comment block (it describes the plain file); the
    # rest starts at "groups:" and goes under spec:, indented by two.
    start = next(i for i, l in enumerate(lines) if l.startswith("groups:"))
    body = "".join(("  " + l if l.strip() else "") + "\n" for l in lines[start:])
    return HEADER + body


def main():
    text = render()
    if sys.argv[1:] == ["--check"]:
        with open(TARGET) as f:
            if f.read() != text:
                print(f"{TARGET} is out of date: run {sys.argv[0]}")
                return 1
        print(f"{os.path.basename(TARGET)} matches {os.path.basename(SOURCE)}")
        return 0
    with open(TARGET, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
