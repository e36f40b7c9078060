#!/usr/bin/env python3
"""Prints 'N passed, N failed, N skipped' from one or more meson testlog.json
files (the main, sanitizer and fuzz build dirs), counting the gtest cases inside
each test binary when their output lists them. Names what failed first, so a
truncated CI log still shows it."""
import json, os, re, sys

passed = failed = skipped = 0
failures = []
lines = [(path, line) for path in sys.argv[1:] for line in open(path)]
for path, line in lines:
    t = json.loads(line)
    out = t.get("stdout", "") or ""
    ok = len(re.findall(r"^\[       OK \]", out, re.M))
    bad = len(re.findall(r"^\[  FAILED  \] \S+\.\S+ \(", out, re.M))
    skip = len(re.findall(r"^\[  SKIPPED \] \S+\.\S+ \(", out, re.M))
    if t["result"] not in ("OK", "EXPECTEDFAIL", "SKIP"):
        cases = re.findall(r"^\[  FAILED  \] (\S+\.\S+) \(", out, re.M)
        checks = re.findall(r"^FAIL: (.{0,120})", out, re.M)
        failures.append(f"{os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(path))))}: {t.get('name', '?')} [{t['result']}]"
                        + "".join(f"\n    {c}" for c in (cases or checks)[:10]))
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
for f in failures:
    print("FAILED:", f)
print(f"{passed} passed, {failed} failed, {skipped} skipped")
