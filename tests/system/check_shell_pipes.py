#!/usr/bin/env python3
"""Flags `... | grep -q` in shell scripts that run under `set -o pipefail`.

grep -q exits at its first match; a writer still writing then dies of SIGPIPE,
and with pipefail the whole pipeline fails although grep matched. That is how
check-deb.sh once said "does not ship /etc/oomguard.toml" for a .deb that
ships it. Use a here-string (`grep -q PATTERN <<<"$var"`) instead.
"""
import pathlib
import re
import subprocess
import sys

root = pathlib.Path(sys.argv[1])
files = subprocess.run(["git", "-C", str(root), "ls-files", "*.sh", "*.sh.in"],
                       capture_output=True, text=True, check=False).stdout.split()
if not files:  # not a git checkout (a source tarball): every script below root
    files = [str(p.relative_to(root)) for p in root.rglob("*.sh")]
pipe_into_quiet_grep = re.compile(r"\|\s*grep\s+(-\w*q\w*|--quiet)\b")
bad = []
for rel in files:
    text = (root / rel).read_text(errors="replace")
    if "pipefail" not in text:
        continue
    for n, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""
        if pipe_into_quiet_grep.search(code):
            bad.append(f"{rel}:{n}: pipe into grep -q under pipefail: {line.strip()}")
for b in bad:
    print(b)
print(f"{len(files)} scripts checked, {len(bad)} pipe(s) into grep -q under pipefail")
sys.exit(1 if bad else 0)
