#!/usr/bin/env python3
"""The node lab's driver: runs inside the VM (oomguard-lab.service, see
tests/node/make-image.sh), from the lab disk the host made for this run.

It installs the .deb under test with apt, runs the scenarios of issue 12 and
writes one line per result to the results port (argv[1], the VM's ttyS1):
  PASS: <n>. what (detail)   FAIL: ...   SKIP: ... (the reason)
  FIG: name=value            a measured figure
  NOTE: text                 context for a human
  LAB done                   every scenario ran (the host fails without it)
The host (tests/node/node_lab.py) parses these lines and asserts on them.

Everything here acts on the VM alone: the real /proc/sysrq-trigger is the
VM's, the hogs live in the VM's cgroups.

The scenarios live in modules by subject and run here in the order below:
service_scenarios.py (0, 1, 6, 7, 12), sensing_scenarios.py (3, 5),
kill_scenarios.py (2, 4), runtime_pods.py (8, 10, 11) and runtime_daemonset.py
(9) over the CRI with their shared helpers in runtime.py, readme.py (13); the
helpers every one of them uses are in lab.py.
"""
import os
import shutil
import sys
import time

import readme
import runtime_daemonset
import runtime_pods
from kill_scenarios import scenario2, scenario4
from lab import CG, HOG, LAB, RUN, check, counts, emit, fig, in_lab_vm, note, read, report, show
from sensing_scenarios import scenario3, scenario5_armed, scenario5_stall
from service_scenarios import install, scenario1, scenario6_ratelimit, scenario6_reload, scenario6_watchdog, \
    scenario7, scenario12


def main():
    if not in_lab_vm():
        sys.exit("driver.py: not in the node lab VM (no oomguard.lab=1 on the kernel command line); refusing")
    t0 = time.monotonic()
    os.makedirs(RUN, exist_ok=True)
    shutil.copy(f"{LAB}/oomguard-node-hog", HOG)
    os.chmod(HOG, 0o755)
    fig("kernel", os.uname().release)
    # systemd-analyze time waits for the boot to finish, which includes this
    # driver: take multi-user.target's timestamp instead.
    mu = show("ActiveEnterTimestampMonotonic", "multi-user.target")
    if mu.isdigit():
        fig("multi_user_reached_s", f"{int(mu) / 1e6:.1f}")
    fig("uptime_at_driver_s", read("/proc/uptime").split()[0])
    ctrl = read(CG + "/cgroup.controllers").split()
    check(read("/proc/self/mountinfo").count(" - cgroup2 ") == 1 and " - cgroup " not in read("/proc/self/mountinfo")
          and "memory" in ctrl, "0. pure cgroup v2 with the memory controller", " ".join(ctrl))
    check(os.path.exists("/proc/pressure/memory"), "0. PSI is on (/proc/pressure/memory)")
    env = dict(l.split("=", 1) for l in read(f"{LAB}/env").splitlines() if "=" in l)
    only = set(env.get("OOMGUARD_NODE_ONLY", "").split(",")) - {""}
    want = lambda n: not only or n in only  # noqa: E731
    ctx = {}
    if not install():
        emit("LAB done")
        return
    steps = [
        ("1", scenario1),
        ("5", lambda: ctx.__setitem__("psi_fd", scenario5_armed())),
        ("4", lambda: scenario4(ctx, early=True)),
        ("3", scenario3),
        ("2", lambda: scenario2(ctx)),
        ("12", scenario12),
        ("6", scenario6_reload),
        ("6", scenario6_ratelimit),
        ("6", scenario6_watchdog),
        ("4", lambda: scenario4(ctx, early=False)),
        ("5", lambda: scenario5_stall(ctx.get("psi_fd"))),
        # The runtime scenarios (issue 13, runtime.py): containerd over the CRI.
        ("8", runtime_pods.scenario8),
        ("9", runtime_daemonset.scenario9),
        ("10", runtime_pods.scenario10),
        ("11", runtime_pods.scenario11),
        # The README's operator quick start, verbatim (issue 16, readme.py).
        ("13", readme.scenario13),
        ("7", scenario7),
    ]
    for name, fn in steps:
        if not want(name):
            continue
        t = time.monotonic()
        try:
            fn()
        except Exception as e:  # one broken scenario must not hide the others
            import traceback
            report("FAIL", f"{name}. scenario raised {type(e).__name__}: {e}")
            note(traceback.format_exc())
        fig(f"scenario_{name}_s", f"{time.monotonic() - t:.1f}")
    fig("driver_s", f"{time.monotonic() - t0:.1f}")
    emit(f"LAB done {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")


if __name__ == "__main__":
    main()
