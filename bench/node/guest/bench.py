#!/usr/bin/env python3
"""The node benchmark's guest driver (runs in the VM as oomguard-bench.service,
from the bench disk /dev/vdb; see bench/node/make-bench-image.sh).

For each scenario, for each guard (the guard order rotates per scenario), one
episode: reset the node, start the system services, the heartbeat and the
guard, run the workload in kubelet-like cgroups, stop the guard, save the raw
records to the output disk (/dev/vdd, one directory per episode, synced), and
clean up. All analysis happens on the host (bench/node/analyze.py): the guest
only records. Progress lines go to the results port (argv[1]).

It reuses the node lab's guest helpers (tests/node/guest/lab.py, copied to
the bench disk unchanged by the host): Pod naming, Kmsg, the kmsg clock offset.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402  (tests/node/guest/lab.py)

if __name__ == "__main__" and not lab.in_lab_vm():
    sys.exit("bench.py: not in the node lab VM (no oomguard.lab=1 on the kernel command line); refusing")

LAB = os.path.dirname(os.path.abspath(__file__))
TOOL = "/usr/local/bin/benchtool"
HOG = "/usr/local/bin/oomguard-node-hog"
OUTDIR = "/out"
DATA = "/data"
WS_FILE = f"{DATA}/ws.bin"
GUARDS = ["none", "script", "earlyoom", "oomd", "nohang", "oomguard"]
UNIT = {"script": "oom-script.service", "earlyoom": "earlyoom.service", "oomd": "systemd-oomd.service",
        "nohang": "nohang.service", "oomguard": "oomguard.service"}
# The DaemonSet's original loop, as written: free -m every 60 s, sysrq 'f' below 350 MiB.
SCRIPT = ("while true; do avail=$(free -m | awk '/^Mem:/{print $7}'); "
          "if [ \"$avail\" -lt 350 ]; then echo f > /proc/sysrq-trigger; fi; sleep 60; done")
BURSTABLE_ADJ = 500

emit = lab.emit
run = lab.run


def now_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


class Episode:
    def __init__(self, scn, guard, idx):
        self.scn, self.guard = scn, guard
        self.dir = f"{OUTDIR}/{idx:02d}-{scn}-{guard}"
        os.makedirs(self.dir, exist_ok=True)
        self.procs = []
        self.pods = []     # dicts for meta.json
        self.events = {}   # name -> CLOCK_MONOTONIC ns

    def mark(self, name):
        self.events[name] = now_ns()

    def launch(self, name, role, qos, adj, argv, pod=True, oom_group=True, wait_cgroup=True):
        """argv in a kubelet-like container scope (pod=True) or a system.slice scope,
        under benchtool spawn (which reaps and logs every exit)."""
        if pod:
            p = lab.Pod(qos, "bench", name, name.split("-")[0], adj)
            slice_, unit, cg = p.slice, p.scope, p.cgroup
        else:
            slice_, unit, cg = "system.slice", f"{name}.scope", f"/system.slice/{name}.scope"
        log = f"{self.dir}/{name}.spawn"
        cmd = [TOOL, "spawn", log, str(adj), "--", "systemd-run", "--scope", "--quiet", f"--slice={slice_}",
               f"--unit={unit}", "-p", "MemoryAccounting=yes"] + [str(a) for a in argv]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=open(f"{self.dir}/{name}.err", "w"))
        self.procs.append(proc)
        path = lab.CG + cg
        if wait_cgroup and not lab.wait_for(lambda: os.path.exists(path + "/cgroup.procs"), 20, 0.02):
            emit(f"NOTE: {name}: no cgroup {cg} after 20 s")
        if pod and oom_group:
            # What kubelet/runc set on v2; systemd may reset it when it realizes the unit.
            for _ in range(10):
                try:
                    lab.write(path + "/memory.oom.group", "1")
                except OSError:
                    pass
                time.sleep(0.05)
                if lab.read(path + "/memory.oom.group").strip() == "1":
                    break
        self.pods.append({"name": name, "role": role, "qos": qos, "adj": adj, "cgroup": cg, "unit": unit,
                          "spawn": os.path.basename(log), "started_ns": now_ns()})
        return path

    def empty(self, name):
        pod = next(p for p in self.pods if p["name"] == name)
        procs = lab.read(lab.CG + pod["cgroup"] + "/cgroup.procs").split()
        return not procs

    def save(self, extra):
        meta = {"scenario": self.scn, "guard": self.guard, "pods": self.pods, "events": self.events}
        meta.update(extra)
        with open(f"{self.dir}/meta.json", "w") as f:
            json.dump(meta, f, indent=1)


def meminfo_mib(key="MemAvailable"):
    return lab.meminfo()[key] >> 20


def hog(mib, rate=0, hold=60, samples=None, log=None):
    a = [HOG, "--anon", int(mib), "--rate", int(rate), "--hold", int(hold)]
    if samples:
        a += ["--samples", samples]
    if log:
        a += ["--log", log]
    return a


def window(ep, cap_s, done, settle_s=3.0):
    """Waits until done() has held for settle_s, or cap_s from now; at the cap
    the workload pods are killed through cgroup.kill (after the 'cap' mark:
    the analysis counts no kill after it), so a node left thrashing by its
    guard does not eat the run's time."""
    t0 = time.monotonic()
    since = None
    while time.monotonic() - t0 < cap_s:
        if done():
            since = since or time.monotonic()
            if time.monotonic() - since >= settle_s:
                break
        else:
            since = None
        time.sleep(0.25)
    else:
        ep.mark("cap")
        for p in ep.pods:
            if p["role"] != "system":
                try:
                    lab.write(lab.CG + p["cgroup"] + "/cgroup.kill", "1")
                except OSError:
                    pass
    ep.mark("window_end")


def ready(path):
    return "ready" in lab.read(path)


# --- scenarios: each runs its workload and returns extra meta ----------------------

def s_ramp(ep, a0):
    size = a0 + 400
    ep.mark("workload_start")
    ep.launch("ramp-hog", "besteffort", "BestEffort", 1000,
              hog(size, 0, 30, samples=f"{ep.dir}/ramp-hog.samples", log=f"{ep.dir}/ramp-hog.log"))
    window(ep, 45, lambda: ep.empty("ramp-hog"))
    return {"hog_mib": size, "rate": "max"}


def s_leak(ep, a0):
    pre = max(200, a0 - 450)
    ep.launch("app-prefill", "burstable", "Burstable", BURSTABLE_ADJ,
              hog(pre, 0, 150, log=f"{ep.dir}/app-prefill.log"))
    lab.wait_for(lambda: ready(f"{ep.dir}/app-prefill.log"), 60, 0.2)
    ep.mark("workload_start")
    ep.launch("leaky-hog", "besteffort", "BestEffort", 1000,
              hog(900, 10, 60, samples=f"{ep.dir}/leaky-hog.samples", log=f"{ep.dir}/leaky-hog.log"))
    window(ep, 70, lambda: ep.empty("leaky-hog"))
    return {"prefill_mib": pre, "leak_mib": 900, "rate": 10}


def s_multi(ep, a0):
    ep.mark("workload_start")
    names = []
    for i in range(3):
        n = f"grow{i}-be"
        ep.launch(n, "besteffort", "BestEffort", 1000, hog(int(a0 * 0.35), 40, 30, log=f"{ep.dir}/{n}.log"))
        names.append(n)
    ep.launch("grow3-burst", "burstable", "Burstable", BURSTABLE_ADJ,
              hog(int(a0 * 0.30), 40, 30, log=f"{ep.dir}/grow3-burst.log"))
    names.append("grow3-burst")
    window(ep, 45, lambda: all(ep.empty(n) or ready(f"{ep.dir}/{n}.log") for n in names), settle_s=5)
    return {"n_pods": 4, "each_mib": [int(a0 * 0.35)] * 3 + [int(a0 * 0.30)], "rate_each": 40}


def s_storm(ep, a0):
    n, mib = 240, 8
    ep.mark("workload_start")
    ep.launch("forkstorm", "besteffort", "BestEffort", 1000, [TOOL, "storm", n, mib, 25, f"{ep.dir}/forkstorm.children"])
    window(ep, 40, lambda: ep.empty("forkstorm"))
    return {"children": n, "mib_each": mib}


def cachesvc_ops(path):
    import struct
    try:
        raw = open(path, "rb").read(16)
    except OSError:
        return 0
    return struct.unpack("<qq", raw)[0] if len(raw) == 16 else 0


def s_thrash(ep, a0):
    ws = 700
    ep.launch("cache-svc", "guaranteed", "Guaranteed", -997, [TOOL, "cachesvc", WS_FILE, ws, f"{ep.dir}/cachesvc", 120])
    lab.wait_for(lambda: cachesvc_ops(f"{ep.dir}/cachesvc") > 0, 90, 0.2)
    ep.mark("warm")
    time.sleep(4)  # a baseline of warm random reads
    aw = meminfo_mib()
    size = max(100, aw - 450)
    ep.mark("workload_start")
    ep.launch("squeeze-hog", "besteffort", "BestEffort", 1000,
              hog(size, 60, 60, samples=f"{ep.dir}/squeeze-hog.samples", log=f"{ep.dir}/squeeze-hog.log"))
    window(ep, 55, lambda: ep.empty("squeeze-hog"))
    return {"ws_mib": ws, "avail_warm_mib": aw, "hog_mib": size, "rate": 60}


def s_control(ep, a0):
    ep.launch("idle-be", "besteffort", "BestEffort", 1000, hog(200, 0, 120, log=f"{ep.dir}/idle-be.log"))
    lab.wait_for(lambda: ready(f"{ep.dir}/idle-be.log"), 30, 0.2)
    ep.mark("workload_start")
    sh = (f"dd if=/dev/zero of={DATA}/stream bs=1M count=1000 status=none; "
          f"dd if={DATA}/stream of=/dev/null bs=1M status=none; dd if={WS_FILE} of=/dev/null bs=1M status=none; "
          f"echo done > {ep.dir}/streamer.done")
    ep.launch("streamer", "burstable", "Burstable", BURSTABLE_ADJ, ["/bin/sh", "-c", sh])
    window(ep, 70, lambda: os.path.exists(f"{ep.dir}/streamer.done") or ep.empty("streamer"), settle_s=2)
    return {"stream_write_mib": 1000, "stream_read_mib": 1000 + 700}


SCENARIOS = [("ramp", s_ramp, 60), ("thrash", s_thrash, 110), ("control", s_control, 90),
             ("multi", s_multi, 65), ("storm", s_storm, 60), ("leak", s_leak, 100)]


# --- guards ------------------------------------------------------------------------

def guard_start(g):
    if g == "none":
        return ""
    if g == "script":
        r = run(["systemd-run", "--quiet", "--unit=oom-script", "/bin/sh", "-c", SCRIPT])
    elif g == "oomd":
        run(["systemctl", "start", "kubepods.slice"])
        run(["systemctl", "set-property", "--runtime", "kubepods.slice", "ManagedOOMMemoryPressure=kill"])
        r = run(["systemctl", "start", "systemd-oomd.socket", "systemd-oomd.service"])
    else:
        r = run(["systemctl", "start", UNIT[g]], timeout=60)
    ok = lab.wait_for(lambda: lab.show("ActiveState", UNIT[g]) == "active", 20)
    if ok and g == "nohang":
        # nohang (python) needs seconds of CPU under TCG before it watches anything.
        ok = lab.wait_for(lambda: "Monitoring has started" in run(
            ["journalctl", "-u", UNIT[g], "-n", "30", "--no-pager", "-o", "cat"]).stdout, 40, 0.5)
        if not ok:
            return "nohang: no 'Monitoring has started' within 40 s"
    return "" if ok else f"{UNIT[g]} not active: {r.stderr[-200:]}"


def guard_stop(g):
    if g == "none":
        return
    run(["systemctl", "stop", UNIT[g]], timeout=60)
    if g == "oomd":
        run(["systemctl", "stop", "systemd-oomd.socket"])
        run(["systemctl", "set-property", "--runtime", "kubepods.slice", "ManagedOOMMemoryPressure=auto"])
    if g == "script":
        run(["systemctl", "reset-failed", UNIT[g]])


def reset(procs):
    run(["systemctl", "stop", "kubepods.slice"], timeout=60)
    for u in ("heartbeat.scope", "kubelet-like.scope", "containerd-like.scope"):
        run(["systemctl", "stop", u], timeout=30)
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
    run(["systemctl", "reset-failed"])
    for f in ("stream",):
        try:
            os.unlink(f"{DATA}/{f}")
        except FileNotFoundError:
            pass
    run(["sync"], timeout=120)
    lab.write("/proc/sys/vm/drop_caches", "3")
    time.sleep(1)


def lock_driver():
    """mlockall: the driver must keep time under the thrashing it causes (its own
    pages would be evicted and refaulted like everyone's), or the window caps
    stretch to minutes. Not inherited by what it forks."""
    import ctypes
    ok = ctypes.CDLL(None, use_errno=True).mlockall(3) == 0  # MCL_CURRENT | MCL_FUTURE
    return ok


def main():
    t_start = time.monotonic()
    locked = lock_driver()
    env = dict(line.split("=", 1) for line in lab.read(f"{LAB}/env").splitlines() if "=" in line)
    budget = float(env.get("BENCH_BUDGET_S", "3300"))
    only_s = [s for s in env.get("BENCH_SCENARIOS", "").split(",") if s]
    only_g = [g for g in env.get("BENCH_GUARDS", "").split(",") if g]
    for src, dst in ((f"{LAB}/benchtool", TOOL), (f"{LAB}/oomguard-node-hog", HOG)):
        subprocess.run(["install", "-m", "0755", src, dst], check=True)
    os.makedirs(OUTDIR, exist_ok=True)
    r = run(["mount", "/dev/vdd", OUTDIR])
    if r.returncode:
        emit(f"BENCH fail: mount /dev/vdd: {r.stderr}")
        return
    os.makedirs(DATA, exist_ok=True)
    r = run(["mount", "/dev/vdc", DATA])
    if r.returncode:
        emit(f"BENCH fail: mount /dev/vdc: {r.stderr}")
        return
    run(["systemctl", "unmask", "earlyoom.service", "nohang.service", "oomguard.service",
         "systemd-oomd.service", "systemd-oomd.socket"])
    run(["systemctl", "start", "kubepods.slice"])
    # What kubelet sets on a node (its kernel defaults): overcommit always, no panic on OOM.
    lab.write("/proc/sys/vm/overcommit_memory", "1")
    lab.write("/proc/sys/vm/panic_on_oom", "0")
    info = {"kernel": os.uname().release, "memtotal_mib": meminfo_mib("MemTotal"),
            "versions": lab.read(f"{LAB}/versions"), "nproc": os.cpu_count(),
            "disk": lab.read("/sys/block/vdc/queue/rotational").strip(),
            "earlyoom_default": lab.read("/etc/default/earlyoom"),
            "swap_mib": meminfo_mib("SwapTotal"), "driver_mlocked": locked}
    with open(f"{OUTDIR}/node.json", "w") as f:
        json.dump(info, f, indent=1)
    emit(f"BENCH node MemTotal {info['memtotal_mib']} MiB, swap {info['swap_mib']} MiB, kernel {info['kernel']}, "
         f"driver mlocked {locked}")
    idx = 0
    for si, (scn, fn, est) in enumerate(SCENARIOS):
        if only_s and scn not in only_s:
            continue
        guards = [g for g in GUARDS if not only_g or g in only_g]
        k = si % len(guards)
        order = guards[k:] + guards[:k]  # interleaved: a different guard goes first each scenario
        for g in order:
            elapsed = time.monotonic() - t_start
            if elapsed + est > budget:
                emit(f"BENCH skipped {scn} {g} (elapsed {elapsed:.0f} s, budget {budget:.0f} s)")
                continue
            idx += 1
            t_ep = time.monotonic()
            ep = Episode(scn, g, idx)
            extra = {}
            try:
                ep.launch("kubelet-like", "system", "-", -999, hog(100, 0, 280), pod=False)
                ep.launch("containerd-like", "system", "-", -999, hog(50, 0, 280), pod=False)
                ep.launch("heartbeat", "system", "-", -999, [TOOL, "heartbeat", f"{ep.dir}/hb", 200], pod=False)
                time.sleep(1.5)
                err = guard_start(g)
                if err:
                    emit(f"NOTE: {scn} {g}: {err}")
                time.sleep(2)
                a0 = meminfo_mib()
                kmsg = lab.Kmsg()
                ep.mark("guard_up")
                extra = fn(ep, a0) or {}
                extra["a0_mib"] = a0
                guard_stop(g)
                ep.mark("guard_stopped")
                off, why = lab.kmsg_clock_offset()
                extra["kmsg_offset_ns"] = off
                extra["kmsg"] = kmsg.since(kmsg.mark)
                if g != "none":
                    unit = UNIT[g]
                    j = run(["journalctl", "-u", unit, "-o", "short-monotonic", "--no-pager", "-n", "300"], timeout=60)
                    with open(f"{ep.dir}/guard.log", "w") as f:
                        f.write(j.stdout)
                extra["guard_error"] = err
            except Exception as e:  # one broken episode must not end the run
                import traceback
                emit(f"NOTE: {scn} {g} raised {type(e).__name__}: {e}")
                extra["error"] = traceback.format_exc()
                guard_stop(g)
            ep.save(extra)
            reset(ep.procs)
            run(["sync"])
            kills = [t for t in extra.get("kmsg", []) if "Killed process" in t[2]]
            emit(f"BENCH episode {idx} {scn} {g} {time.monotonic() - t_ep:.0f} s, kernel kills {len(kills)}")
    run(["umount", OUTDIR])
    emit(f"BENCH done {idx} episodes in {time.monotonic() - t_start:.0f} s")


if __name__ == "__main__":
    main()
