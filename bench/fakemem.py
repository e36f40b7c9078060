"""Benchmarks on a fake meminfo both daemons read (issue 17; bench/run.py):
spikes faster than this machine can fault memory (fakespikes) and the idle
cost at a steady fake headroom (fakeidle)."""

import os
import random
import shutil
import statistics
import time

from common import FAKE_THRESHOLD, FAKE_TOTAL, MiB, summarize_episodes


def window_costs(b, a, el):
    """One daemon's cost over one window, from two proc_metrics() readings."""
    return {"seconds": el, "wakeups_per_s": (a["ctxt_all"] - b["ctxt_all"]) / el,
            "cpu_ms_per_min": (a["cpu_ns_all"] - b["cpu_ns_all"]) / 1e6 * 60 / el,
            "threads": a["threads"],
            # The main thread alone (what the earlier tables showed).
            "main_wakeups_per_s": (a["voluntary_ctxt_switches"] + a["nonvoluntary_ctxt_switches"]
                                   - b["voluntary_ctxt_switches"] - b["nonvoluntary_ctxt_switches"]) / el,
            "main_cpu_ms_per_min": (a["cpu_ns"] - b["cpu_ns"]) / 1e6 * 60 / el}


class FakeMemBenches:
    """Mixin on Harness."""

    def fake_episode(self, daemon, rate_mbps, start_headroom_kib, margin_kib, hold_ms=500):
        threshold = FAKE_THRESHOLD
        start = threshold + start_headroom_kib
        proc, meminfo = self.fake_proc(start)
        ramp_argv = [self.ramp, "--fake-meminfo", meminfo, "--fake-total-kib", str(FAKE_TOTAL),
                     "--fake-start-kib", str(start), "--threshold-kib", str(threshold),
                     "--floor-kib", str(threshold - margin_kib), "--rate-mbps", str(rate_mbps),
                     "--hold-ms", str(hold_ms), "--timeout-ms", "15000", "--wait-go"]

        def start_daemon():
            if daemon == "oomguard":
                cfg = self.oomguard_config(threshold, self.fifo, psi=False)
                return self.start_oomguard(cfg, extra=("--proc-root", proc))
            return self.start_earlyoom_fake(meminfo, self.earlyoom_argv(threshold))

        def before_go():
            # Steady memory first, for a random while: the spike starts at a random
            # phase of either daemon's sleep.
            time.sleep(random.uniform(1.0, 2.0))

        res = self.ramp_episode(daemon, ramp_argv, start_daemon, before_go, died={"floor_first": True})
        if res["t_action_ns"] and res["t_action_ns"] < res.get("t_start_ns", 0):
            res["valid"], res["why"] = False, "acted before the spike started"
        return res

    def bench_fakespikes(self):
        """Issue 17: spikes faster than this machine can fault memory, on a fake
        meminfo both daemons read: 3 GiB above the threshold down to a floor
        `margin` below it, at 1/4/10/20 GB/s."""
        n = self.args.spike_episodes
        out = {}
        for rate in (1000, 4000, 10000, 20000):
            for margin in (128, 256):
                label = f"{rate // 1000} GB/s, margin {margin} MiB"
                print(f"fakespikes: {label}", flush=True)
                got = {d: [] for d in ("oomguard", "earlyoom")}
                disc = {d: [] for d in got}
                for i in range(n):
                    for d in (("oomguard", "earlyoom") if i % 2 == 0 else ("earlyoom", "oomguard")):
                        res = self.fake_episode(d, rate, 3072 * MiB, margin * MiB)
                        (got[d] if res["valid"] else disc[d]).append(res)
                        caught = res["t_action_ns"] and not res["floor_first"]
                        print(f"  {label} {d:9s} #{i + 1:2d} latency {res['latency_us'] / 1000:8.2f} ms "
                              f"{'caught' if caught else 'MISSED'} end={res['end']}", flush=True)
                out[label] = summarize_episodes(got, disc)
        self.results["fakespikes"] = out

    def bench_fakeidle(self):
        """Idle cost of both daemons at a steady fake headroom (issue 17). Every
        thread counted; the shipped oomguard both with a private system bus (as
        on a node) and with none (retries), and the poller alone (--no-dbus)."""
        secs = self.args.fakeidle_seconds
        n_win = max(1, self.args.fakeidle_windows)
        out = {}
        have_strace = shutil.which("strace") is not None
        for label, head in (("20 GiB", 20 * 1024 * MiB), ("3 GiB", 3072 * MiB), ("1 GiB", 1024 * MiB),
                            ("500 MiB", 500 * MiB)):
            proc, meminfo = self.fake_proc(FAKE_THRESHOLD + head)
            trig = os.path.join(self.tmp, "fakeidle-trigger")
            cfg = self.oomguard_config(FAKE_THRESHOLD, trig, psi=False)
            bus, address = self.private_bus()
            daemons = {}
            try:
                daemons["earlyoom"] = self.start_earlyoom_fake(meminfo, self.earlyoom_argv(FAKE_THRESHOLD))
                daemons["oomguard, system bus"] = self.start_oomguard(
                    cfg, extra=("--proc-root", proc), log="fakeidle-bus.log",
                    env_extra={"DBUS_SYSTEM_BUS_ADDRESS": address})
                # No bus socket at all: the bus thread retries with backoff.
                daemons["oomguard, no bus"] = self.start_oomguard(
                    cfg, extra=("--proc-root", proc), log="fakeidle-nobus.log",
                    env_extra={"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=" + os.path.join(self.tmp, "no-bus")})
                daemons["oomguard --no-dbus"] = self.start_oomguard(
                    cfg, extra=("--proc-root", proc, "--no-dbus"), log="fakeidle-nodbus.log")
                registered = self.wait_log("fakeidle-bus.log", "D-Bus: org.oomguard1 registered on")
                time.sleep(2)
                # Several windows, daemons side by side: a burst of other work on
                # this shared host (its interrupts and softirqs are charged to
                # whichever thread runs) lands in one window, not in the median.
                windows = []
                for _ in range(n_win):
                    before = {k: self.proc_metrics(p.pid) for k, p in daemons.items()}
                    t0 = time.monotonic()
                    time.sleep(secs / n_win)
                    el = time.monotonic() - t0
                    after = {k: self.proc_metrics(p.pid) for k, p in daemons.items()}
                    windows.append({k: window_costs(before[k], after[k], el) for k in daemons})
                calls = ({} if not have_strace or label not in ("20 GiB", "500 MiB")
                         else self.strace_calls({k: p.pid for k, p in daemons.items()}, 10))
            finally:
                for k, p in daemons.items():
                    (self.stop_earlyoom if k == "earlyoom" else self.stop_oomguard)(p)
                self.stop(bus)
            row = {}
            for k in daemons:
                ws = [w[k] for w in windows]
                row[k] = {key: statistics.median(w[key] for w in ws) for key in ws[0]}
                row[k].update(seconds=sum(w["seconds"] for w in ws), windows=len(ws), threads=ws[-1]["threads"],
                              cpu_ms_per_min_windows=[w["cpu_ms_per_min"] for w in ws])
                # Per window, against earlyoom's in the same window.
                row[k]["cpu_ratio_windows"] = [w[k]["cpu_ms_per_min"] / w["earlyoom"]["cpu_ms_per_min"]
                                               for w in windows if w["earlyoom"]["cpu_ms_per_min"] > 0]
                row[k]["cpu_ratio_median"] = (statistics.median(row[k]["cpu_ratio_windows"])
                                              if row[k]["cpu_ratio_windows"] else None)
                wake = row[k]["wakeups_per_s"]
                if calls.get(k) is not None and wake:
                    row[k]["syscalls_per_s"] = calls[k]
                    row[k]["syscalls_per_wakeup"] = calls[k] / wake
            row["registered"] = registered
            out[label] = row
            print(f"  fakeidle {label}: {row}", flush=True)
        self.results["fakeidle"] = out
