#!/usr/bin/env python3
"""Benchmarks oomguard against earlyoom in the same run and writes a results table.

Run it through bench/run.sh (see bench/README.md). This script re-executes
itself as PID 1 of a new PID namespace with its own /proc, so earlyoom, which
kills processes, can only ever see the processes this bench started; when the
bench ends for any reason (also Ctrl-C or an error), the kernel kills every
process left in that namespace. oomguard writes its "sysrq" trigger to a FIFO
in the bench's temp dir, never to /proc/sysrq-trigger.
"""
# The benches are split by subject: harness.py (processes, daemons, /proc
# metrics), ramps.py (real memory), fakemem.py (fake meminfo), costs.py (idle,
# startup, unit, hover, psi), report.py (the markdown table), common.py.

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

# Run as root from the source tree: leave no __pycache__ there (package
# builds hash and copy the untracked files).
sys.dont_write_bytecode = True

from common import ALL, ROOT, Interrupted, on_signal
from costs import CostBenches
from fakemem import FakeMemBenches
from harness import Harness
from ramps import RampBenches
from report import host_info, render


class Bench(Harness, RampBenches, FakeMemBenches, CostBenches):
    """Everything here runs inside the PID namespace."""

    def run(self):
        only = self.args.only.split(",")
        for name in ALL:
            if name in only:
                getattr(self, "bench_" + name)()


def inner(args):
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    bench = Bench(args)
    rc = 0
    try:
        bench.run()
    except Interrupted as e:
        print(f"bench: interrupted ({e}); cleaning up", file=sys.stderr)
        rc = 130
    except Exception:
        import traceback
        traceback.print_exc()
        rc = 1
    finally:
        bench.cleanup()
    with open(os.path.join(args.tmp, "results.json"), "w") as f:
        json.dump(bench.results, f, indent=1)
    return rc


def outer(args, argv):
    if os.geteuid() != 0:
        sys.exit("bench: run as root (mlockall, PSI trigger, PID namespace, earlyoom's kill)")
    for b in (os.path.join(args.build, "src", "oomguard"), os.path.join(args.build, "bench", "oomg_ramp"),
              os.path.join(args.build, "bench", "oomg_unit_cost")):
        if not os.access(b, os.X_OK):
            sys.exit(f"bench: {b} not built (bench/run.sh builds it)")
    if shutil.which("earlyoom") is None:
        sys.exit("bench: earlyoom not installed (apt-get install earlyoom)")
    if shutil.which("unshare") is None:
        sys.exit("bench: unshare (util-linux) not installed")
    unknown = set(args.only.split(",")) - set(ALL)
    if unknown:
        sys.exit(f"bench: unknown benchmark(s) {','.join(sorted(unknown))}; choose from {','.join(ALL)}")

    tmp = tempfile.mkdtemp(prefix="oomguard-bench-")
    child = None

    def forward(signum, _frame):
        # The inner bench cleans up on SIGTERM; if it does not go within 5 s,
        # killing unshare kills the namespace's PID 1 and with it everything.
        if child and child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
        raise Interrupted(f"signal {signum}")

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGHUP, forward)
    try:
        cmd = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
               sys.executable, os.path.abspath(__file__), "--inner", "--tmp", tmp,
               "--host-mnt-ns", str(os.stat("/proc/self/ns/mnt").st_ino)] + argv
        try:
            child = subprocess.Popen(cmd)
            rc = child.wait()
        except KeyboardInterrupt:
            # Ctrl-C reached the inner bench too; give it time to clean up.
            try:
                rc = child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
                rc = 130
        except Interrupted:
            rc = 143
        results_path = os.path.join(tmp, "results.json")
        results = json.load(open(results_path)) if os.path.exists(results_path) else {}
        if not results:
            print(f"bench: no results (exit {rc}); logs were in {tmp}", file=sys.stderr)
            return rc or 1
        command = args.command or ("bench/run.sh " + " ".join(argv)).strip()
        info = host_info(args.build)
        md = render(results, info, command)
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(md)
        with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
            json.dump({"command": command, "info": info, "results": results}, f, indent=1)
        print(md)
        print(f"bench: wrote {args.out} and {os.path.splitext(args.out)[0]}.json", file=sys.stderr)
        return rc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"), help="meson build dir")
    ap.add_argument("--episodes", type=int, default=20, help="valid episodes per daemon and case (default 20)")
    ap.add_argument("--idle-seconds", type=int, default=60)
    ap.add_argument("--only", default=",".join(ALL), help=f"comma list of {','.join(ALL)}")
    ap.add_argument("--hover-seconds", type=int, default=5)
    ap.add_argument("--spike-episodes", type=int, default=10, help="fakespikes: episodes per daemon and case")
    ap.add_argument("--fakeidle-seconds", type=int, default=60,
                    help="fakeidle: seconds per headroom, split into --fakeidle-windows windows")
    ap.add_argument("--fakeidle-windows", type=int, default=6)
    ap.add_argument("--tune-fill-rates", default="1GiB/s,2GiB/s,4GiB/s,8GiB/s")
    ap.add_argument("--nice", type=int, default=0, help="run both daemons at this niceness (default 0)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "latest.md"))
    ap.add_argument("--command", default="", help="command line to record in the table")
    ap.add_argument("--compare-oomguard", default="",
                    help="another oomguard binary, added to the idle and journal benches (before/after)")
    ap.add_argument("--render", metavar="JSON", help="only rewrite --out from a results JSON written earlier")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--host-mnt-ns", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.episodes < 1 or args.episodes > 200 or args.idle_seconds < 1 or args.idle_seconds > 600:
        sys.exit("bench: --episodes 1..200, --idle-seconds 1..600")
    args.build = os.path.abspath(args.build)
    if args.inner:
        sys.exit(inner(args))
    if args.render:
        saved = json.load(open(args.render))
        with open(args.out, "w") as f:
            f.write(render(saved["results"], saved["info"], saved["command"]))
        return
    argv = [a for a in sys.argv[1:]]
    sys.exit(outer(args, argv))


if __name__ == "__main__":
    main()
