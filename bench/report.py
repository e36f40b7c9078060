"""The results table of bench/run.py: host info and the markdown report."""

import datetime
import os
import platform
import subprocess

from common import FAKE_THRESHOLD, FAKE_TOTAL, MiB, ROOT, mem_total_kib


def fmt(v, digits=2):
    if v is None or (isinstance(v, float) and v != v):
        return "n/a"
    return f"{v:.{digits}f}"


def host_info(build):
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "mem_total_gib": mem_total_kib() / 1024 / 1024,
    }
    try:
        info["cpu"] = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except StopIteration:
        info["cpu"] = "?"
    info["earlyoom"] = subprocess.run(["earlyoom", "-v"], capture_output=True, text=True).stdout.strip() or \
        subprocess.run(["earlyoom", "-v"], capture_output=True, text=True).stderr.strip()
    info["oomguard"] = subprocess.run([os.path.join(build, "src", "oomguard"), "--version"],
                                      capture_output=True, text=True).stdout.strip()
    git = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True, text=True)
    info["commit"] = git.stdout.strip() or "?"
    return info


def head(L, *cols):
    """A table's header row and separator."""
    L.append("| " + " | ".join(cols) + " |")
    L.append("|" + "---|" * len(cols))


def row(L, *cells):
    L.append("| " + " | ".join(str(c) for c in cells) + " |")


def latency_ratio(og, eo):
    return eo["latency_ms"]["p50"] / og["latency_ms"]["p50"] if og and eo and og["latency_ms"]["p50"] > 0 \
        else float("nan")


def section_latency(L, targets, lat):
    L.append("## 1. Reaction latency on real memory\n")
    L.append("From the ramp's first read of MemAvailable below the threshold (threshold = MemAvailable at "
             "episode start − 512 MiB) to the action: the trigger byte arriving on the bench's FIFO "
             "(oomguard, `mode = \"sysrq\"`, shipped config otherwise) or SIGTERM arriving in the ramp "
             "(earlyoom `-M <threshold KiB>`). Each daemon is started fresh for each episode. "
             "Overshoot: how far below the threshold MemAvailable was when the action arrived.\n")
    head(L, "ramp", "daemon", "episodes (discarded)", "ramp MB/s p50", "p50 ms", "p95 ms", "max ms",
         "overshoot p50 MiB", "earlyoom/oomguard p50")
    for label, s in lat.items():
        og, eo = s.get("oomguard"), s.get("earlyoom")
        ratio = latency_ratio(og, eo)
        for d in ("oomguard", "earlyoom"):
            x = s.get(d)
            if not x:
                continue
            row(L, label, d, f"{x['episodes']} ({x['discarded']})", fmt(x['rate_mbps']['p50'], 0),
                fmt(x['latency_ms']['p50']), fmt(x['latency_ms']['p95']), fmt(x['latency_ms']['max']),
                fmt(x['overshoot_mib']['p50'] if x['overshoot_mib'] else None, 1),
                fmt(ratio, 1) + '×' if d == 'oomguard' else '')
        if og and eo:
            targets.append((f"latency p50 ≤ 1/10 of earlyoom ({label})",
                            f"{fmt(og['latency_ms']['p50'])} vs {fmt(eo['latency_ms']['p50'])} ms "
                            f"({fmt(ratio, 1)}×)", ratio >= 10))
        if og and label == "1GB/s":
            targets.append(("latency p95 ≤ 10 ms at 1 GB/s", f"{fmt(og['latency_ms']['p95'])} ms",
                            og["latency_ms"]["p95"] <= 10))
    reasons = sorted({r for s in lat.values() for x in s.values() for r in x["discard_reasons"]})
    if reasons:
        L.append("\nDiscarded episodes (retried): " + "; ".join(reasons) + ".")


def section_journal(L, targets, jr):
    L.append("## 1b. Reaction with journald stalled\n")
    L.append("oomguard logging to journald (`--log-target=journal`), whose socket queue is full and unread from "
             "just before the ramp starts (a journald stuck under memory pressure; `sd_journal_send()` then blocks). "
             "1 GB/s ramp; the ramp holds below the threshold for 2 s.\n")
    head(L, "oomguard binary", "episodes", "trigger arrived", "p50 ms", "p95 ms", "max ms")
    for label, x in jr.items():
        row(L, label, x['episodes'], x['acted'], fmt(x['latency_ms']['p50']), fmt(x['latency_ms']['p95']),
            fmt(x['latency_ms']['max']))


def section_spikes(L, targets, sp):
    L.append("## 2. Fast spikes\n")
    L.append("Fastest ramp; the ramp stops at a floor 256 MiB below the threshold and holds for 500 ms. "
             "Caught = the action arrived before the ramp read MemAvailable below the floor.\n")
    head(L, "daemon", "caught before floor", "share", "ramp MB/s p50", "latency p50 ms", "p95 ms", "max ms")
    for d in ("oomguard", "earlyoom"):
        x = sp.get(d)
        if not x:
            continue
        share = x["before_floor"] / x["episodes"] if x["episodes"] else float("nan")
        x["share"] = share
        row(L, d, f"{x['before_floor']}/{x['episodes']}", f"{share * 100:.0f}%", fmt(x['rate_mbps']['p50'], 0),
            fmt(x['latency_ms']['p50']), fmt(x['latency_ms']['p95']), fmt(x['latency_ms']['max']))
    if "oomguard" in sp and "earlyoom" in sp:
        a, b = sp["oomguard"]["share"], sp["earlyoom"]["share"]
        targets.append(("spikes caught ≥ earlyoom's share", f"{a * 100:.0f}% vs {b * 100:.0f}%", a >= b))


def section_idle(L, targets, idle):
    secs = next(iter(idle.values()))["seconds"]
    L.append("## 3. Idle cost\n")
    L.append(f"All daemons at once for {secs:.0f} s with plenty of free memory, oomguard with the shipped "
             "config unless stated. CPU from /proc/<pid>/schedstat "
             "(ns; utime+stime from /proc/<pid>/stat has 10 ms ticks and is shown too). Wakeups = context "
             "switches per second. Locked resident = the RSS of mappings that are mlocked (VmFlags `lo` in "
             "/proc/<pid>/smaps; with MCL_ONFAULT every resident page of such a mapping is locked); VmLck "
             "counts whole locked mappings, resident or not. RssFile is mostly shared library text that other "
             "processes map too; RssAnon is the daemon's own memory.\n")
    head(L, "daemon", "CPU ms (schedstat)", "CPU ms (stat ticks)", "wakeups/s", "RSS KiB", "locked resident KiB",
         "VmLck KiB", "RssAnon KiB", "RssFile KiB")
    for k, x in idle.items():
        row(L, k, fmt(x['cpu_ms']), fmt(x['cpu_ticks_ms'], 0), fmt(x['wakeups_per_s']), x['rss_kib'],
            x['locked_resident_kib'], x['vmlck_kib'], x['rss_anon_kib'], x['rss_file_kib'])
    eo = next((x for k, x in idle.items() if k.startswith("earlyoom")), None)
    og = next((x for k, x in idle.items() if "as under systemd" in k), None)
    if eo and og:
        targets.append(("idle CPU ≤ earlyoom's", f"{fmt(og['cpu_ms'])} vs {fmt(eo['cpu_ms'])} ms",
                        og["cpu_ms"] <= eo["cpu_ms"]))
        targets.append(("RSS ≤ 4 MiB, all locked",
                        f"RSS {og['rss_kib']} KiB, locked resident {og['locked_resident_kib']} KiB",
                        og["rss_kib"] <= 4096 and og["locked_resident_kib"] >= og["rss_kib"] - 8))


def section_unit(L, targets, unit):
    L.append("## 4. Unit costs\n")
    L.append("Per operation; rounds of blocks interleaved; p50/p95 over rounds.\n")
    head(L, "operation", "p50 µs", "p95 µs", "vs floor (p50)")
    floors = {"meminfo_sample": "pread_meminfo_floor", "trigger_fire_fifo": "write_kept_fd_floor"}
    for name, x in unit.items():
        fl = floors.get(name)
        ratio = f"{x['p50_ns'] / unit[fl]['p50_ns']:.2f}×" if fl in unit else ""
        row(L, name, fmt(x['p50_ns'] / 1000, 3), fmt(x['p95_ns'] / 1000, 3), ratio)
    L.append("| scan 110x4 / 1000 pods | see bench/cgroup_scan_bench | | |")
    if "meminfo_sample" in unit:
        r = unit["meminfo_sample"]["p50_ns"] / unit["pread_meminfo_floor"]["p50_ns"]
        targets.append(("MemAvailable sample within 1.5× of a bare pread", f"{r:.2f}×", r <= 1.5))


def section_startup(L, targets, st):
    L.append("## 5. Startup\n")
    L.append("oomguard: spawn to READY=1 on the bench's NOTIFY_SOCKET (config parsed, meminfo open, first "
             "sample, mlockall). earlyoom has no READY; shown is spawn to the last line of its startup banner. "
             "Floor: spawn and exit of /bin/true.\n")
    head(L, "program", "runs", "p50 ms", "p95 ms", "max ms")
    for k, label in (("oomguard", "oomguard to READY"), ("earlyoom", "earlyoom to banner"),
                     ("spawn_floor", "/bin/true spawn+exit")):
        x = st[k]
        row(L, label, x['n'], fmt(x['p50']), fmt(x['p95']), fmt(x['max']))


def section_fakespikes(L, targets, fs):
    L.append("## 2b. Fast spikes on a fake meminfo (issue 17)\n")
    L.append(f"One fake meminfo file (MemTotal {FAKE_TOTAL // MiB // 1024} GiB, threshold "
             f"{FAKE_THRESHOLD // MiB} MiB) that both daemons read: oomguard through `--proc-root` "
             "(shipped config, `psi = false`), earlyoom 1.7 through a bind mount over /proc/meminfo in "
             "its own mount namespace (`-M <threshold KiB> -r 0`). After 1–2 s (random) of steady "
             "memory 3 GiB above the threshold, `oomg_ramp --fake-meminfo` rewrites MemAvailable in "
             "place every ~0.1 ms, falling at the given rate to a floor `margin` below the threshold. "
             "Caught = the action (trigger byte / SIGTERM) arrived before the file reached the floor. "
             "Latency: from the first write below the threshold to the action. Each daemon fresh per "
             "episode, order alternating.\n")
    head(L, "spike", "daemon", "caught before floor", "latency p50 ms", "p95 ms", "max ms",
         "earlyoom p50 / oomguard p50")
    for label, s in fs.items():
        og, eo = s.get("oomguard"), s.get("earlyoom")
        # p50 is None when no episode acted.
        ratio = latency_ratio(og, eo) if og and og["latency_ms"]["p50"] else float("nan")
        for d in ("oomguard", "earlyoom"):
            x = s.get(d)
            if not x:
                continue
            row(L, label, d, f"{x['before_floor']}/{x['episodes']}", fmt(x['latency_ms']['p50']),
                fmt(x['latency_ms']['p95']), fmt(x['latency_ms']['max']),
                fmt(ratio, 1) + '×' if d == 'oomguard' else '')
        if label.startswith("10 GB/s, margin 256") and og and eo:
            targets.append(("10 GB/s spike, 256 MiB margin: 10/10 caught",
                            f"{og['before_floor']}/{og['episodes']}", og["before_floor"] == og["episodes"]))
            targets.append(("10 GB/s spike: oomguard p50 <= earlyoom p50 / 10",
                            f"{fmt(og['latency_ms']['p50'])} vs {fmt(eo['latency_ms']['p50'])} ms",
                            og["latency_ms"]["p50"] is not None and eo["latency_ms"]["p50"] is not None
                            and og["latency_ms"]["p50"] <= eo["latency_ms"]["p50"] / 10))


FAKEIDLE_KINDS = ["oomguard, system bus", "oomguard, no bus", "oomguard --no-dbus", "earlyoom"]


def section_fakeidle(L, targets, fi):
    L.append("## 3b. Idle cost at a steady fake headroom (issue 17)\n")
    L.append("All daemons at once on the same fake meminfo, MemAvailable held at the given headroom above "
             "the threshold; shipped config (oomguard, `psi = false`), `-M <threshold KiB> -r 0` (earlyoom). "
             "Wakeups = context switches per second of every thread (/proc/<pid>/task/*/status); CPU = "
             "sum of every thread's /proc/<pid>/task/*/schedstat, scaled to one minute. Syscalls per wakeup: "
             "strace -c -f over 10 s after the measurement, divided by the wakeups of the clean window. "
             "Each headroom is measured in several windows one after another (the daemons run side by side "
             "throughout); the tables give the median over the windows, and the ratio is the median of each "
             "window's oomguard/earlyoom CPU, with its range over the windows.\n")
    L.append("`oomguard, system bus` is the shipped daemon connected to a private system-type dbus-daemon "
             "and owning org.oomguard1, as on a node; this row is the one the targets use. `oomguard, no bus` "
             "has no bus socket and retries (backoff to 30 s); `oomguard --no-dbus` is the poller alone.\n")
    kinds = FAKEIDLE_KINDS
    head(L, "steady headroom", *(f"{k} wakeups/s" for k in kinds), *(f"{k} CPU ms/min" for k in kinds))
    for label, x in fi.items():
        row(L, label, *(fmt(x.get(k, {}).get("wakeups_per_s")) for k in kinds),
            *(fmt(x.get(k, {}).get("cpu_ms_per_min")) for k in kinds))
    if any("cpu_ratio_median" in v for x in fi.values() for v in x.values() if isinstance(v, dict)):
        L.append("")
        og_kinds = [k for k in kinds if k != "earlyoom"]
        head(L, "steady headroom", "windows", *(f"{k} CPU / earlyoom's, median (range)" for k in og_kinds))
        for label, x in fi.items():
            def ratio(k):
                v = x.get(k, {})
                w = v.get("cpu_ratio_windows") or []
                return (f"{fmt(v.get('cpu_ratio_median'))} ({fmt(min(w))}–{fmt(max(w))})" if w else "")
            row(L, label, str(x.get("earlyoom", {}).get("windows", "")), *(ratio(k) for k in og_kinds))
    if any("syscalls_per_wakeup" in v for x in fi.values() for v in x.values() if isinstance(v, dict)):
        L.append("")
        head(L, "steady headroom", *(f"{k} syscalls/wakeup" for k in kinds))
        for label, x in fi.items():
            if any("syscalls_per_wakeup" in x.get(k, {}) for k in kinds):
                row(L, label, *(fmt(x.get(k, {}).get("syscalls_per_wakeup"), 1) for k in kinds))
    for label, x in fi.items():
        if label in ("20 GiB", "500 MiB"):
            og, eo = x["oomguard, system bus"], x["earlyoom"]
            if not x.get("registered", True):
                targets.append((f"idle at {label}: the shipped daemon registered on the private bus",
                                "not registered", False))
            targets.append((f"idle at {label}: wakeups/s no worse than earlyoom (oomguard, system bus)",
                            f"{fmt(og['wakeups_per_s'])} vs {fmt(eo['wakeups_per_s'])}",
                            og["wakeups_per_s"] <= eo["wakeups_per_s"]))
            if og.get("cpu_ratio_median") is not None:
                targets.append((f"idle at {label}: CPU/min no worse than earlyoom (oomguard, system bus; "
                                "median of the per-window ratio)",
                                f"{fmt(og['cpu_ms_per_min'])} vs {fmt(eo['cpu_ms_per_min'])} ms, "
                                f"ratio {fmt(og['cpu_ratio_median'])}", og["cpu_ratio_median"] <= 1.0))
            else:  # results from before the windows
                targets.append((f"idle at {label}: CPU/min no worse than earlyoom (oomguard, system bus)",
                                f"{fmt(og['cpu_ms_per_min'])} vs {fmt(eo['cpu_ms_per_min'])} ms",
                                og["cpu_ms_per_min"] <= eo["cpu_ms_per_min"]))


def section_hover(L, targets, hv):
    L.append("## 6a. The price of adaptive polling: oomguard's CPU while MemAvailable holds still\n")
    L.append("Shipped [poll] settings; a fake proc root whose MemAvailable stays at the given headroom above "
             "the threshold. Expected polls/s = fill_rate / headroom, clamped to [1/max_interval, "
             "1/min_interval].\n")
    head(L, "headroom", "wakeups/s", "CPU % of one core", "CPU µs per wakeup")
    for label, x in hv.items():
        row(L, label, fmt(x['wakeups_per_s'], 1), fmt(x['cpu_percent'], 3), fmt(x['cpu_us_per_wakeup'], 1))


def section_tune(L, targets, tune):
    L.append("## 6b. Polling tuning: oomguard alone at the fastest ramp, by assumed fill_rate\n")
    head(L, "fill_rate", "episodes", "ramp MB/s p50", "p50 ms", "p95 ms", "max ms", "overshoot p50 MiB")
    for fill, x in tune.items():
        row(L, fill, x['episodes'], fmt(x['rate_mbps']['p50'], 0), fmt(x['latency_ms']['p50']),
            fmt(x['latency_ms']['p95']), fmt(x['latency_ms']['max']),
            fmt(x['overshoot_mib']['p50'] if x['overshoot_mib'] else None, 1))


def section_psi(L, targets, psi):
    L.append("## 6c. PSI trigger constants under real memory stalls\n")
    L.append(f"A reader looping over a 96 MiB file in a 64 MiB memory cgroup for {psi['seconds']} s "
             f"(page cache dropped first, so it reclaims inside the cgroup): {psi['stall_ms']:.0f} ms of "
             f"system-wide `some` stall. Each candidate is a PSI trigger opened by the bench at the same time. "
             f"CAP_SYS_RESOURCE: {'yes' if psi['cap_sys_resource'] else 'no (windows must be multiples of 2 s)'}. "
             f"oomguard uses 20ms/500ms, or 50ms/2s without CAP_SYS_RESOURCE.\n")
    head(L, "some stall / window", "events", "first event ms", "all events ms")
    for k, x in psi["candidates"].items():
        if "rejected" in x:
            L.append(f"| {k} | rejected by the kernel: {x['rejected']} | | |")
        else:
            row(L, k, x['events'], fmt(x['first_ms'], 0), x['times_ms'])


# In the order of the report (not of the numbering).
SECTIONS = [("latency", section_latency), ("journal", section_journal), ("spikes", section_spikes),
            ("idle", section_idle), ("unit", section_unit), ("startup", section_startup),
            ("fakespikes", section_fakespikes), ("fakeidle", section_fakeidle), ("hover", section_hover),
            ("tune", section_tune), ("psi", section_psi)]


def render(results, info, command):
    L = []
    L.append("# oomguard benchmark results\n")
    L.append(f"Made by `{command}` on {info['date']}, commit `{info['commit']}`.\n")
    if info.get("note"):
        L.append(info["note"] + "\n")
    L.append(f"Host: kernel {info['kernel']}, {info['cpus']} CPUs ({info['cpu']}), "
             f"{info['mem_total_gib']:.1f} GiB RAM, no swap unless stated. "
             f"{info['oomguard']} vs {info['earlyoom']} (Debian package), same run, episodes interleaved.\n")
    L.append("The machine is shared with other work, so absolute numbers move between runs; "
             "the comparison within one run is what counts.\n")
    targets = []
    for name, section in SECTIONS:
        x = results.get(name)
        if x and (name != "psi" or "candidates" in x):
            section(L, targets, x)
            L.append("")

    if targets:
        L.append("## Targets\n")
        head(L, "target", "measured", "met")
        for name, val, ok in targets:
            row(L, name, val, 'yes' if ok else '**no**')
        L.append("| scan of 110×4 within 2× of the pread floor | see bench/cgroup_scan_bench | |")
        L.append("")
    return "\n".join(L) + "\n"
