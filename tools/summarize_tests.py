#!/usr/bin/env python3
"""Prints 'N passed, N failed, N skipped' from one or more meson testlog.json
files (the main, sanitizer and fuzz build dirs), counting the gtest cases inside
each test binary when their output lists them."""
import json, re, sys

passed = failed = skipped = 0
lines = [line for path in sys.argv[1:] for line in open(path)]
for line in lines:
    t = json.loads(line)
    out = t.get("stdout", "") or ""
    ok = len(re.findall(r"^\[       OK \]", out, re.M))
    bad = len(re.findall(r"^\[  FAILED  \] \S+\.\S+ \(", out, re.M))
    skip = len(re.findall(r"^\[  SKIPPED \] \S+\.\S+ \(", out, re.M))
    if ok or bad or skip:
        passed += ok; failed += bad; skipped += skip
        if t["result"] not in ("OK", "EXPECTEDFAIL", "SKIP") and not bad:
            failed += 1
    elif t["result"] in ("OK", "EXPECTEDFAIL"):
        passed += 1
    elif t["result"] == "SKIP":
        skipped += 1
    else:
        failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
