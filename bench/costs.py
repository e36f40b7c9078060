"""What the daemons cost (bench/run.py): idle CPU, wakeups and memory, startup
to READY, unit costs (oomg_unit_cost), oomguard's CPU while MemAvailable
hovers (hover), and when PSI triggers fire under real stalls (psi)."""

import json
import os
import select
import subprocess
import time

from common import MiB, summary


class CostBenches:
    """Mixin on Harness."""

    def bench_idle(self):
        secs = self.args.idle_seconds
        print(f"idle cost over {secs} s", flush=True)
        cfg = self.oomguard_config(
            # The shipped threshold: nothing can trigger with this much free memory.
            350 * MiB, os.path.join(self.tmp, "idle-trigger.fifo"))
        os.mkfifo(os.path.join(self.tmp, "idle-trigger.fifo"), 0o600)
        daemons = {}
        daemons["earlyoom (Debian default args)"] = self.start_earlyoom(self.earlyoom_argv(default=True))
        daemons["oomguard (NOTIFY_SOCKET, as under systemd)"] = self.start_oomguard(cfg, notify=True, log="idle1.log")
        daemons["oomguard (no NOTIFY_SOCKET)"] = self.start_oomguard(cfg, notify=False, log="idle2.log")
        cfg_1s = self.oomguard_config(350 * MiB, os.path.join(self.tmp, "idle-trigger.fifo"),
                                      poll={"max_interval": "1s"})
        daemons["oomguard, max_interval 1s (NOTIFY_SOCKET)"] = self.start_oomguard(cfg_1s, notify=True,
                                                                                  log="idle3.log")
        if self.args.compare_oomguard:
            daemons[f"compare: {self.args.compare_oomguard} (NOTIFY_SOCKET)"] = self.start_oomguard(
                cfg, notify=True, log="idle4.log", binary=self.args.compare_oomguard)
        try:
            time.sleep(3)
            before = {k: self.proc_metrics(p.pid) for k, p in daemons.items()}
            t0 = time.monotonic()
            end = t0 + secs
            while time.monotonic() < end:
                time.sleep(min(1.0, end - time.monotonic()))
                for p in daemons.values():
                    if getattr(p, "notify", None):
                        try:
                            while p.notify.recv(4096):
                                pass
                        except BlockingIOError:
                            pass
            elapsed = time.monotonic() - t0
            after = {k: self.proc_metrics(p.pid) for k, p in daemons.items()}
        finally:
            for k, p in daemons.items():
                if k.startswith("earlyoom"):
                    self.stop_earlyoom(p)
                else:
                    self.stop_oomguard(p)
        res = {}
        for k in daemons:
            b, a = before[k], after[k]
            wake = (a["voluntary_ctxt_switches"] + a["nonvoluntary_ctxt_switches"]
                    - b["voluntary_ctxt_switches"] - b["nonvoluntary_ctxt_switches"])
            res[k] = {
                "seconds": elapsed,
                "cpu_ms": (a["cpu_ns"] - b["cpu_ns"]) / 1e6,
                "cpu_ticks_ms": a["cpu_ticks_ms"] - b["cpu_ticks_ms"],
                "wakeups_per_s": wake / elapsed,
                "rss_kib": a["VmRSS_kib"], "hwm_kib": a["VmHWM_kib"], "vmlck_kib": a["VmLck_kib"],
                "locked_resident_kib": a["rss_locked_kib"],
                "rss_anon_kib": a["RssAnon_kib"], "rss_file_kib": a["RssFile_kib"],
            }
            print(f"  {k}: {res[k]}", flush=True)
        self.results["idle"] = res

    def bench_startup(self):
        n = self.args.episodes
        print("startup to READY", flush=True)
        cfg = self.oomguard_config(350 * MiB, self.fifo)
        og, eo, floor = [], [], []
        for _ in range(n):
            p = self.start_oomguard(cfg, notify=True, log="startup.log")
            og.append(p.ready_ns / 1e6)
            self.stop_oomguard(p)
            p = self.start_earlyoom(self.earlyoom_argv(default=True), settle=False)
            eo.append(p.ready_ns / 1e6)
            self.stop_earlyoom(p)
            t0 = time.monotonic_ns()
            subprocess.run(["/bin/true"], check=True)
            floor.append((time.monotonic_ns() - t0) / 1e6)
        self.results["startup"] = {"oomguard": summary(og), "earlyoom": summary(eo), "spawn_floor": summary(floor)}
        print(f"  {self.results['startup']}", flush=True)

    def bench_unit(self):
        print("unit costs", flush=True)
        out = subprocess.run([self.unit_cost, "60"], check=True, capture_output=True, text=True).stdout
        self.results["unit"] = {d["name"]: d for d in map(json.loads, out.splitlines())}
        print("  " + out.replace("\n", "\n  "), flush=True)

    def bench_hover(self):
        """The price of adaptive polling: CPU while MemAvailable sits still at a
        given headroom above the threshold (a fake proc root, so any headroom can
        be held for as long as we like)."""
        secs = self.args.hover_seconds
        proc = os.path.join(self.tmp, "hover-proc")
        os.makedirs(proc, exist_ok=True)
        threshold = 1024 * MiB
        total = 24 * 1024 * MiB
        cfg = self.oomguard_config(threshold, os.path.join(self.tmp, "hover-trigger"))
        out = {}
        for label, head_kib in (("4 GiB", 4096 * MiB), ("1 GiB", 1024 * MiB), ("256 MiB", 256 * MiB),
                                ("64 MiB", 64 * MiB), ("16 MiB", 16 * MiB), ("4 MiB", 4 * MiB), ("1 MiB", MiB)):
            with open(os.path.join(proc, "meminfo"), "w") as f:
                f.write(f"MemTotal:       {total} kB\nMemFree:        {threshold + head_kib} kB\n"
                        f"MemAvailable:   {threshold + head_kib} kB\nSwapTotal:             0 kB\n"
                        f"SwapFree:              0 kB\n")
            p = self.start_oomguard(cfg, notify=True, log="hover.log", extra=("--proc-root", proc))
            try:
                time.sleep(0.5)
                b = self.proc_metrics(p.pid)
                t0 = time.monotonic()
                time.sleep(secs)
                a = self.proc_metrics(p.pid)
                el = time.monotonic() - t0
            finally:
                self.stop_oomguard(p)
            wake = (a["voluntary_ctxt_switches"] + a["nonvoluntary_ctxt_switches"]
                    - b["voluntary_ctxt_switches"] - b["nonvoluntary_ctxt_switches"]) / el
            cpu = (a["cpu_ns"] - b["cpu_ns"]) / 1e9 / el
            out[label] = {"headroom_kib": head_kib, "wakeups_per_s": wake, "cpu_percent": cpu * 100,
                          "cpu_us_per_wakeup": cpu * 1e6 / wake if wake else float("nan")}
            print(f"  hover {label}: {out[label]}", flush=True)
        self.results["hover"] = out

    def bench_psi(self):
        """When do PSI triggers with various constants fire under real memory
        stalls? A reader in a memory cgroup of our own (64 MiB limit) loops over
        a 96 MiB file whose page cache we dropped, so every pass reclaims inside
        the cgroup. The daemon's own constants are among the candidates."""
        secs = 6
        cands = [(20, 500), (50, 500), (100, 1000), (20, 2000), (50, 2000), (100, 2000), (200, 2000)]
        if os.path.exists("/sys/fs/cgroup/memory/memory.limit_in_bytes"):
            cg, limit_file = f"/sys/fs/cgroup/memory/oomguard-bench-psi-{os.getppid()}", "memory.limit_in_bytes"
        elif "memory" in open("/sys/fs/cgroup/cgroup.controllers").read().split():
            cg, limit_file = f"/sys/fs/cgroup/oomguard-bench-psi-{os.getppid()}", "memory.max"
        else:
            self.results["psi"] = {"skipped": "no memory cgroup controller"}
            return
        print(f"PSI triggers under a {secs} s page-cache thrash in {cg}", flush=True)
        data = "/var/tmp/oomguard-bench-psi.dat"
        fds, poller, res = {}, select.poll(), {}
        for st, win in cands:
            fd = os.open("/proc/pressure/memory", os.O_RDWR | os.O_NONBLOCK)
            try:
                os.write(fd, f"some {st * 1000} {win * 1000}\0".encode())
                fds[fd] = (st, win)
                poller.register(fd, select.POLLPRI)
            except OSError as e:
                os.close(fd)
                res[f"{st}ms/{win}ms"] = {"rejected": e.strerror}
        reader = None
        try:
            with open(data, "wb") as f:
                for _ in range(96):
                    f.write(os.urandom(1 << 20))
                f.flush()
                os.fsync(f.fileno())
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            os.mkdir(cg)
            with open(os.path.join(cg, limit_file), "w") as f:
                f.write(str(64 << 20))
            stall0 = int(open("/proc/pressure/memory").read().split()[4].split("=")[1])
            t0 = time.monotonic()
            reader = self.spawn(["sh", "-c", f"echo $$ > {cg}/cgroup.procs; i=0; "
                                 f"while [ $i -lt 1000 ]; do cat {data} > /dev/null; i=$((i+1)); done"])
            events = {fd: [] for fd in fds}
            while time.monotonic() - t0 < secs:
                for fd, ev in poller.poll(50):
                    if ev & select.POLLPRI:
                        events[fd].append(time.monotonic() - t0)
            stall = int(open("/proc/pressure/memory").read().split()[4].split("=")[1]) - stall0
        finally:
            if reader:
                self.stop(reader, 1)
            for fd in fds:
                os.close(fd)
            time.sleep(0.2)
            if os.path.isdir(cg):
                os.rmdir(cg)
            if os.path.exists(data):
                os.unlink(data)
        for fd, (st, win) in fds.items():
            e = events[fd]
            res[f"{st}ms/{win}ms"] = {"events": len(e), "first_ms": e[0] * 1000 if e else None,
                                      "times_ms": [round(x * 1000) for x in e]}
        self.results["psi"] = {"seconds": secs, "stall_ms": stall / 1000, "candidates": res,
                               "cap_sys_resource": bool(int(open("/proc/self/status").read().split("CapEff:")[1]
                                                            .split()[0], 16) & (1 << 24))}
        print(f"  {self.results['psi']}", flush=True)
