#!/usr/bin/env python3
"""Turns the node benchmark's raw records (bench/node/run.py OUT_RAW_DIR) into
the table (markdown + JSON) and the plots.

Usage: analyze.py RAW_DIR OUT_PREFIX [PLOT_PREFIX]
       (writes OUT_PREFIX.md, OUT_PREFIX.json; PLOT_PREFIX.png, -thrash.png, -leak.png,
        PLOT_PREFIX defaults to OUT_PREFIX)

Per episode (all times CLOCK_MONOTONIC in the VM; kmsg stamps converted with
the offset the guest measured):
  worst gap    longest interval between two heartbeat ticks (50 ms sleeps) in
               the window [guard up, window end]
  crossing     first sample (heartbeat or the hog's per-MiB samples) with
               MemAvailable < 350 MiB; for thrash, the stall start: the first
               1 s of the service's random reads below a tenth of its warm rate
  first kill   earliest of: a kernel 'Killed process' line (kernel OOM, or
               sysrq 'f' when the report says order=-1), a workload process
               ending on a signal (a daemon's kill; seen by its reaper)
  unusable     the union of heartbeat gaps > 1 s and /bin/true probes > 1 s
"""
import glob
import json
import os
import re
import struct
import sys

THRESH_KB = 350 * 1024
GUARDS = ["none", "script", "earlyoom", "oomd", "nohang", "oomguard"]
SCEN = ["ramp", "leak", "multi", "storm", "thrash", "control"]
TITLE = {"ramp": "fast anonymous ramp (as fast as the VM faults)", "leak": "slow leak 10 MiB/s",
         "multi": "four pods growing at once (3 BestEffort, 1 Burstable)",
         "storm": "fork storm (240 x 8 MiB, one BestEffort pod)",
         "thrash": "page-cache service (700 MiB on a 3000 IOPS / 125 MB/s disk) squeezed by an anonymous hog",
         "control": "1 GiB streaming write + 1.7 GiB streaming read (throttled disk), no memory shortage"}


def recs(path, width):
    try:
        raw = open(path, "rb").read()
    except OSError:
        return []
    out = []
    for i in range(0, len(raw) - width * 8 + 1, width * 8):
        r = struct.unpack_from("<" + "q" * width, raw, i)
        if r[0] == 0:
            break
        out.append(r)
    return out


def exits(path):
    out = []
    try:
        for line in open(path):
            f = line.split()
            if f and f[0] == "exit":
                out.append((int(f[1]), int(f[2]), int(f[3])))
    except OSError:
        pass
    return out


def union(intervals):
    total, end = 0, None
    for a, b in sorted(intervals):
        if end is None or a > end:
            total += b - a
            end = b
        elif b > end:
            total += b - end
            end = b
    return total


def episode(d):
    m = json.load(open(f"{d}/meta.json"))
    ev = m["events"]
    t_up, t_end = ev.get("guard_up"), ev.get("window_end") or ev.get("guard_stopped")
    # No kill counts after the cap (the driver's own cgroup.kill) or the window.
    t_stop = ev.get("cap") or t_end
    r = {"dir": os.path.basename(d), "scenario": m["scenario"], "guard": m["guard"], "error": m.get("error"),
         "guard_error": m.get("guard_error")}
    if not t_up or not t_end:
        r["broken"] = True
        return r, None
    t_w = ev.get("workload_start", t_up)
    hb = [x for x in recs(f"{d}/hb", 4) if t_up <= x[0] <= t_end]
    probes = recs(f"{d}/hb.probe", 2)
    ts = [x[0] for x in hb]
    gaps = [(b - a, a, b) for a, b in zip(ts, ts[1:])]
    if ts:
        gaps.append((t_end - ts[-1], ts[-1], t_end))
    worst = max(gaps) if gaps else (t_end - t_up, t_up, t_end)
    r["worst_gap_s"] = worst[0] / 1e9
    r["worst_gap_at_s"] = (worst[1] - t_w) / 1e9
    bad = [(a, b) for g, a, b in gaps if g > 1e9]
    bad += [(t, t + took) for t, took in probes if took > 1e9 and t_up <= t <= t_end]
    r["unusable_s"] = union(bad) / 1e9
    r["probe_max_s"] = max([took for t, took in probes if t_up <= t <= t_end] or [0]) / 1e9
    # MemAvailable samples: the heartbeat's and the hogs' (per MiB touched).
    samples = [(x[0], x[1]) for x in hb]
    for f in glob.glob(f"{d}/*.samples"):
        samples += [(t, kb) for t, kb in recs(f, 2) if t_up <= t <= t_end]
    samples.sort()
    below = next((t for t, kb in samples if 0 <= kb < THRESH_KB), None)
    r["min_avail_mib"] = min([kb for _, kb in samples if kb >= 0] or [0]) >> 10
    r["crossing_s"] = (below - t_w) / 1e9 if below else None
    t_ref, ref_kind = below, "crossing"
    if m["scenario"] == "thrash":
        cs = recs(f"{d}/cachesvc", 2)
        base = [x for x in cs if ev.get("warm", 0) + 1e9 <= x[0] <= t_w]
        if len(base) >= 2:
            rate = (base[-1][1] - base[0][1]) / ((base[-1][0] - base[0][0]) / 1e9)
            r["svc_base_ops"] = rate
            stall = None
            low = []
            for a, b in zip(cs, cs[10:]):
                if a[0] < t_w:
                    continue
                rr = (b[1] - a[1]) / ((b[0] - a[0]) / 1e9)
                low.append(rr)
                if stall is None and rr < rate / 10:
                    stall = a[0]
            r["svc_min_ops"] = min(low) if low else None
            r["stall_s"] = (stall - t_w) / 1e9 if stall else None
            t_ref, ref_kind = stall, "stall"
            # Reads done in the window, relative to the warm rate.
            inwin = [x for x in cs if t_w <= x[0] <= t_end]
            if len(inwin) >= 2:
                r["svc_window_ratio"] = ((inwin[-1][1] - inwin[0][1]) / ((inwin[-1][0] - inwin[0][0]) / 1e9)) / rate
        psi = [x for x in hb if x[2] >= 0]
        if len(psi) >= 2:
            r["psi_some_share"] = (psi[-1][2] - psi[0][2]) / 1e3 / ((psi[-1][0] - psi[0][0]) / 1e6)
    r["ref_kind"] = ref_kind
    # Kills.
    if not isinstance(m["pods"], list):
        # Runs before the fix: the multi scenario's meta {"pods": 4} overwrote the pod list.
        # Rebuild it from the reapers' logs (names say the role).
        m["pods"] = [{"name": os.path.basename(f)[:-6], "spawn": os.path.basename(f), "cgroup": "/nonexistent",
                      "role": "system" if "-like" in f or "heartbeat" in f else
                      "burstable" if "burst" in f else "besteffort"} for f in glob.glob(f"{d}/*.spawn")]
    pods = {p["name"]: p for p in m["pods"]}
    started = {}  # pid -> pod, from the reapers' "start" lines (systemd-run --scope execs in place)
    for n, p in pods.items():
        try:
            for line in open(f"{d}/{p['spawn']}"):
                f = line.split()
                if f and f[0] == "start":
                    started[int(f[2])] = n
        except OSError:
            pass
    off = m.get("kmsg_offset_ns") or 0
    kills = []
    kl = m.get("kmsg", [])
    order = None
    memcg = None
    invocation = 0
    for _, usec, text in kl:
        o = re.search(r"invoked oom-killer: .*order=(-?\d+)", text)
        if o:
            order = int(o.group(1))
            invocation += 1
        c = re.search(r"oom-kill:.*task_memcg=([^,]+)", text)
        if c:
            memcg = c.group(1)
        k = re.search(r"Killed process (\d+) \(([^)]*)\)", text)
        if k:
            t = usec * 1000 - off
            if t > t_stop or int(k.group(1)) in {x["pid"] for x in kills}:
                continue  # the report's line can come twice (console and log buffer)
            who = started.get(int(k.group(1))) or next(
                (n for n, p in pods.items() if memcg and memcg.startswith(p["cgroup"])), memcg or k.group(2))
            kills.append({"t": t, "pid": int(k.group(1)), "pod": who, "by": "sysrq f" if order == -1 else "kernel OOM",
                          "event": ("k", invocation)})
    kpids = {k["pid"] for k in kills}
    for n, p in pods.items():
        for f in (f"{d}/{p['spawn']}",) + ((f"{d}/forkstorm.children",) if n == "forkstorm" else ()):
            for t, pid, st in exits(f):
                sig = st & 0x7F
                if sig and sig != 0x7F and t <= t_stop and t >= t_up and pid not in kpids:
                    kills.append({"t": t, "pid": pid, "pod": n, "by": f"signal {sig}", "event": ("s", pid)})
    # A kernel kill of a process is also seen as its SIGKILL exit: counted once (by pid, above).
    # The kernel does not print every task of a memory.oom.group kill (ratelimited): a
    # signalled exit within 0.5 s after a kernel kill of the same pod is that kill; signalled
    # exits of one pod within 0.1 s of each other are one kill (a group, or one daemon action).
    kills.sort(key=lambda k: k["t"])
    last = {}
    for k in kills:
        prev = last.get(k["pod"])
        if k["event"][0] == "s" and prev:
            window = 5e8 if prev["event"][0] == "k" else 1e8
            if k["t"] - prev["t"] <= window:
                k["event"], k["by"] = prev["event"], prev["by"]
                if prev["event"][0] == "s":
                    prev_t = k["t"]
                    k["t"] = prev["t"]  # the cluster keeps its first time for chaining
                    k["t_real"] = prev_t
        last[k["pod"]] = k
    # A kill is one OOM invocation (memory.oom.group: the kernel kills the whole
    # container, one 'Killed process' line per task) or one signalled process.
    r["kills"] = len({k["event"] for k in kills})
    r["killed_tasks"] = len(kills)
    victims = {}
    for k in kills:
        v = victims.setdefault((k["pod"], k["by"]), {"events": set(), "tasks": 0})
        v["events"].add(k["event"])
        v["tasks"] += 1
    r["victims"] = [{"pod": p, "by": b, "n": len(v["events"]), "tasks": v["tasks"],
                     "role": pods.get(p, {}).get("role", "?")} for (p, b), v in victims.items()]
    if kills:
        first = kills[0]
        r["first_kill_s"] = (first["t"] - t_w) / 1e9
        r["first_kill_by"] = first["by"]
        r["to_first_kill_s"] = (first["t"] - t_ref) / 1e9 if t_ref else None
        if m["scenario"] == "control":
            r["right"] = "FALSE KILL"
        else:
            wrong = sorted({v["pod"] for v in r["victims"] if v["role"] != "besteffort"})
            r["right"] = "yes" if not wrong else "WRONG: " + ", ".join(wrong)
    else:
        r["right"] = "no kill" if m["scenario"] != "control" else "yes (no kill)"
        if "cap" in ev and m["scenario"] != "control":
            r["right"] = f"no kill by the cap ({(ev['cap'] - t_w) / 1e9:.0f} s)"
    svc = []
    if m["scenario"] == "thrash" and r.get("svc_base_ops"):
        cs = recs(f"{d}/cachesvc", 2)
        svc = [((b[0] - t_w) / 1e9, 100 * (b[1] - a[1]) / ((b[0] - a[0]) / 1e9) / r["svc_base_ops"])
               for a, b in zip(cs, cs[10:]) if t_up <= a[0] <= t_end]
    series = {"svc": svc, "t": [(t - t_w) / 1e9 for t, _ in samples], "avail": [kb / 1024 for _, kb in samples],
              "gap_t": [(b - t_w) / 1e9 for g, a, b in gaps], "gap": [g / 1e9 for g, a, b in gaps],
              "kills": [(k["t"] - t_w) / 1e9 for k in kills]}
    return r, series


def fmt(v, nd=2):
    return "–" if v is None else f"{v:.{nd}f}"


def victims_text(r):
    if not r.get("victims"):
        return "–"
    def one(v):
        n = f" ×{v['n']}" if v["n"] > 1 else ""
        tasks = f", {v['tasks']} tasks" if v["tasks"] > v["n"] else ""
        return f"{v['pod']}{n} ({v['by']}{tasks})"
    return "; ".join(one(v) for v in r["victims"])


def main():
    raw, prefix = sys.argv[1], sys.argv[2]
    plot_prefix = sys.argv[3] if len(sys.argv) > 3 else prefix
    rows, series = [], {}
    for d in sorted(glob.glob(f"{raw}/*/meta.json")):
        r, s = episode(os.path.dirname(d))
        rows.append(r)
        if s:
            series[(r["scenario"], r["guard"])] = s
    json.dump(rows, open(prefix + ".json", "w"), indent=1)
    lines = ["### Summary: worst heartbeat gap (s) / unusable (s) / crossing→first kill (s), ✓ right victim, ✗ wrong, – no kill",
             "", "| guard | " + " | ".join(SCEN) + " |", "|---|" + "---|" * len(SCEN)]
    for g in GUARDS:
        cells = []
        for scn in SCEN:
            r = next((x for x in rows if x["scenario"] == scn and x["guard"] == g), None)
            if not r or r.get("broken"):
                cells.append("not run" if not r else "broken")
                continue
            mark = "–" if not r.get("victims") else "✓" if r["right"] == "yes" else "✗"
            if scn == "control":
                mark = "✓ no kill" if not r.get("victims") else "✗ FALSE KILL"
            cells.append(f"{fmt(r['worst_gap_s'])} / {fmt(r['unusable_s'], 1)} / {fmt(r.get('to_first_kill_s'), 1)} {mark}")
        lines.append(f"| {g} | " + " | ".join(cells) + " |")
    for scn in SCEN:
        rs = {r["guard"]: r for r in rows if r["scenario"] == scn}
        if not rs:
            lines.append(f"\n### {scn}: {TITLE[scn]}\n\nnot run\n")
            continue
        ref = "stall→first kill (s)" if scn == "thrash" else "crossing→first kill (s)"
        lines.append(f"\n### {scn}: {TITLE[scn]}\n")
        if scn == "thrash":
            st = [f"{g} {fmt(rs[g].get('stall_s'), 1)}" for g in GUARDS if g in rs]
            lines.append(f"Stall start (s after the hog started; reads below a tenth of warm): {', '.join(st)}.\n")
        extra = " service reads vs warm |" if scn == "thrash" else ""
        lines.append(f"| guard | worst heartbeat gap (s) | {ref} | first kill at (s) | killed (by) | right victim |"
                     f" unusable (s) | min MemAvailable (MiB) |{extra}")
        lines.append("|---|---|---|---|---|---|---|---|" + ("---|" if extra else ""))
        for g in GUARDS:
            r = rs.get(g)
            if not r:
                lines.append(f"| {g} | not run | | | | | | |" + (" |" if extra else ""))
                continue
            if r.get("broken"):
                lines.append(f"| {g} | broken episode | | | | | | |" + (" |" if extra else ""))
                continue
            ex = f" {fmt(r.get('svc_window_ratio'))} |" if extra else ""
            lines.append(f"| {g} | {fmt(r['worst_gap_s'])} | {fmt(r.get('to_first_kill_s'))} | "
                         f"{fmt(r.get('first_kill_s'), 1)} | {victims_text(r)} | {r['right']} | "
                         f"{fmt(r['unusable_s'], 1)} | {r['min_avail_mib']} |{ex}")
    open(prefix + ".md", "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(series, plot_prefix)


def plot(series, prefix):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("analyze: no matplotlib (apt-get install python3-matplotlib): no plot", file=sys.stderr)
        return
    for scn, suffix in (("ramp", ""), ("thrash", "-thrash"), ("leak", "-leak")):
        gs = [g for g in GUARDS if (scn, g) in series]
        if not gs:
            continue
        fig, axes = plt.subplots(len(gs), 1, figsize=(10, 2.1 * len(gs)), sharex=True)
        axes = axes if len(gs) > 1 else [axes]
        for ax, g in zip(axes, gs):
            s = series[(scn, g)]
            ax.plot(s["t"], s["avail"], lw=1, color="tab:blue")
            ax.axhline(350, color="tab:blue", ls=":", lw=0.8)
            ax.set_ylabel("MemAvail MiB", color="tab:blue", fontsize=8)
            ax.set_ylim(bottom=0)
            ax2 = ax.twinx()
            ax2.plot(s["gap_t"], s["gap"], lw=0.8, color="tab:red")
            ax2.set_ylabel("hb gap s", color="tab:red", fontsize=8)
            ax2.set_yscale("log")
            ax2.set_ylim(0.04, 30)
            if s.get("svc"):
                ax3 = ax.twinx()
                ax3.spines["right"].set_position(("outward", 45))
                ax3.plot([x for x, _ in s["svc"]], [y for _, y in s["svc"]], lw=0.8, color="tab:green")
                ax3.set_ylim(0, 200)
                ax3.set_ylabel("svc reads % warm", color="tab:green", fontsize=8)
            for k in s["kills"]:
                ax.axvline(k, color="k", lw=0.8, ls="--")
            ax.set_title(f"{g}", fontsize=9, loc="left")
        axes[-1].set_xlabel(f"s since the workload started ({scn}); dashed: kills")
        what = "MemAvailable (blue), heartbeat gaps (red, log)" + (
            ", service read rate (green, 1 s windows)" if scn == "thrash" else "")
        fig.suptitle(f"node benchmark, {scn}: {what}", fontsize=9)
        fig.tight_layout()
        fig.savefig(prefix + suffix + ".png", dpi=90)
        plt.close(fig)


if __name__ == "__main__":
    main()
