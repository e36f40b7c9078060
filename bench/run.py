#!/usr/bin/env python3
"""Benchmarks oomguard against earlyoom in the same run and writes a results table.

Run it through bench/run.sh (see bench/README.md). This script re-executes
itself as PID 1 of a new PID namespace with its own /proc, so earlyoom, which
kills processes, can only ever see the processes this bench started; when the
bench ends for any reason (also Ctrl-C or an error), the kernel kills every
process left in that namespace. oomguard writes its "sysrq" trigger to a FIFO
in the bench's temp dir, never to /proc/sysrq-trigger.
"""

import argparse
import random
import datetime
import json
import os
import platform
import re
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MiB = 1024  # in KiB

ALL = ["unit", "startup", "idle", "latency", "spikes", "fakespikes", "fakeidle", "journal", "hover", "psi", "tune"]

# The fake node of the fakespikes/fakeidle benches (issue 17): one meminfo file
# that both daemons read, oomguard through --proc-root, earlyoom through a bind
# mount over /proc/meminfo in a mount namespace of its own.
FAKE_TOTAL = 32 * 1024 * MiB
FAKE_THRESHOLD = 1024 * MiB


class Interrupted(Exception):
    pass


def on_signal(signum, _frame):
    raise Interrupted(f"signal {signum}")


def mem_available_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def mem_total_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    raise RuntimeError("no MemTotal")


def quantile(values, q):
    v = sorted(values)
    if not v:
        return float("nan")
    pos = q * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def summary(values):
    return {
        "n": len(values),
        "p50": quantile(values, 0.5),
        "p95": quantile(values, 0.95),
        "max": max(values) if values else float("nan"),
        "min": min(values) if values else float("nan"),
    }


class FakeJournald:
    """/run/systemd/journal/socket of our own, in the bench's private mount
    namespace (a tmpfs over /run/systemd there; nothing outside changes). It
    reads like journald until stall(), then stops reading with a full queue,
    as a journald stuck under memory pressure does."""

    def __init__(self, host_mnt_ns):
        if os.stat("/proc/self/ns/mnt").st_ino == host_mnt_ns:
            raise RuntimeError("not in a private mount namespace; refusing to mount over /run/systemd")
        base = "/run/systemd" if os.path.isdir("/run/systemd") else "/run"
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=755", "oomguard-bench", base], check=True)
        self.base = base
        os.makedirs("/run/systemd/journal", exist_ok=True)
        self.path = "/run/systemd/journal/socket"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.02)
        self.draining = threading.Event()
        self.draining.set()
        self.closing = False
        self.received = 0
        self.thread = threading.Thread(target=self.drain, daemon=True)
        self.thread.start()

    def drain(self):
        while not self.closing:
            if not self.draining.is_set():
                time.sleep(0.005)
                continue
            try:
                self.sock.recv(1 << 17)
                self.received += 1
            except (socket.timeout, BlockingIOError):
                pass

    def stall(self):
        self.draining.clear()
        time.sleep(0.05)
        filler = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        filler.setblocking(False)
        for _ in range(100000):  # fills up to net.unix.max_dgram_qlen
            try:
                filler.sendto(b"MESSAGE=other services logging\n", self.path)
            except (BlockingIOError, OSError):
                break
        filler.close()

    def resume(self):
        self.draining.set()

    def close(self):
        self.closing = True
        self.draining.set()
        self.thread.join(1)
        self.sock.close()
        subprocess.run(["umount", self.base], check=False)


class Bench:
    """Everything here runs inside the PID namespace."""

    def __init__(self, args):
        self.args = args
        self.tmp = args.tmp
        self.build = args.build
        self.oomguard = os.path.join(self.build, "src", "oomguard")
        self.ramp = os.path.join(self.build, "bench", "oomg_ramp")
        self.unit_cost = os.path.join(self.build, "bench", "oomg_unit_cost")
        self.procs = []  # every process we started, for cleanup
        self.fifo = os.path.join(self.tmp, "trigger.fifo")
        os.mkfifo(self.fifo, 0o600)
        self.shipped_config = open(os.path.join(ROOT, "config", "oomguard.toml")).read()
        self.results = {}
        self.seq = 0

    # ---- processes -------------------------------------------------------
    def spawn(self, argv, env=None, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
              bufsize=-1):
        p = subprocess.Popen(argv, env=env, stdout=stdout, stderr=stderr, stdin=stdin, bufsize=bufsize)
        self.procs.append(p)
        return p

    def stop(self, p, timeout=2.0):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(2)
        if p in self.procs:
            self.procs.remove(p)

    def cleanup(self):
        for p in list(self.procs):
            try:
                self.stop(p, 1.0)
            except Exception:
                p.kill()

    def niced(self, argv):
        # nice(1) execs the daemon, so the pid we hold is the daemon's.
        return ["nice", "-n", str(self.args.nice)] + argv if self.args.nice else argv

    def notify_socket(self):
        self.seq += 1
        path = os.path.join(self.tmp, f"notify-{self.seq}.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        return s, path

    # ---- daemons ---------------------------------------------------------
    def oomguard_config(self, threshold_kib, trigger, poll=None, psi=None):
        """The shipped config, with the threshold and trigger of this episode."""
        text = self.shipped_config
        text = re.sub(r'(?m)^min_available = .*$',
                      f'min_available = "{threshold_kib}KiB"\n'
                      f'recover_available = "{threshold_kib + 256 * MiB}KiB"', text)
        text = re.sub(r'(?m)^sysrq_trigger = .*$', f'sysrq_trigger = "{trigger}"', text)
        text = re.sub(r'(?m)^mode = .*$', 'mode = "sysrq"', text)
        for key, value in (poll or {}).items():
            text, n = re.subn(rf'(?m)^{key} = .*$', f'{key} = "{value}"', text)
            assert n == 1, key
        if psi is not None:
            text = re.sub(r'(?m)^psi = .*$', f'psi = {"true" if psi else "false"}', text)
        self.seq += 1
        path = os.path.join(self.tmp, f"oomguard-{self.seq}.toml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def start_oomguard(self, config, notify=True, log="oomguard.log", log_target="stderr", binary=None, extra=(),
                       env_extra=None):
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        env.update(env_extra or {})
        sock = None
        if notify:
            sock, path = self.notify_socket()
            env["NOTIFY_SOCKET"] = path
        log_f = open(os.path.join(self.tmp, log), "ab")
        t0 = time.monotonic_ns()
        p = self.spawn(self.niced([binary or self.oomguard, "--config", config, "--log-target=" + log_target,
                                   *extra]),
                       env=env, stderr=log_f)
        log_f.close()
        ready_ns = None
        if sock:
            sock.settimeout(5.0)
            try:
                while True:
                    msg = sock.recv(4096).decode(errors="replace")
                    if "READY=1" in msg:
                        ready_ns = time.monotonic_ns() - t0
                        break
            except socket.timeout:
                self.stop(p)
                raise RuntimeError("oomguard did not send READY=1 within 5 s; see "
                                   + os.path.join(self.tmp, log))
            sock.setblocking(False)
        p.notify = sock
        p.ready_ns = ready_ns
        return p

    def stop_oomguard(self, p):
        self.stop(p)
        if p.notify:
            p.notify.close()

    def earlyoom_argv(self, threshold_kib=None, default=False):
        argv = ["earlyoom"]
        if default:
            argv += ["-r", "3600"]  # Debian's /etc/default/earlyoom
        else:
            argv += ["-M", str(threshold_kib), "-r", "0"]
        # Inside the namespace the ramp is the only candidate anyway; these make
        # earlyoom's choice explicit.
        argv += ["--prefer", "^oomg_ramp$", "--avoid", "^(python3|oomguard|earlyoom|unshare)$"]
        return argv

    def start_earlyoom(self, argv, settle=True):
        t0 = time.monotonic_ns()
        p = self.spawn(self.niced(argv), stderr=subprocess.PIPE, bufsize=0)
        # The last line of its startup banner comes right before its loop.
        deadline = time.monotonic() + 5
        line = b""
        while time.monotonic() < deadline:
            line = p.stderr.readline()
            if not line or b"SIGKILL when" in line:
                break
        if b"SIGKILL when" not in line:
            self.stop(p)
            raise RuntimeError("earlyoom did not start: " + line.decode(errors="replace"))
        p.ready_ns = time.monotonic_ns() - t0
        # Its startup self-test comes next; with no candidate process it sleeps 1 s
        # before its loop starts. Wait that out rather than measure it.
        if settle and select.select([p.stderr], [], [], 0.05)[0]:
            line = p.stderr.readline()
            if b"Could not find a process to kill" in line:
                time.sleep(1.1)
        # Keep its stderr drained into a log so it never blocks on a full pipe.
        log = open(os.path.join(self.tmp, "earlyoom.log"), "ab")
        p.drain = subprocess.Popen(["cat"], stdin=p.stderr, stdout=log, stderr=subprocess.DEVNULL)
        self.procs.append(p.drain)
        log.close()
        return p

    def stop_earlyoom(self, p):
        self.stop(p)
        self.stop(p.drain)

    # ---- memory episodes -------------------------------------------------
    def wait_memory_settled(self, target_kib, timeout=3.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and mem_available_kib() < target_kib:
            time.sleep(0.02)

    def episode(self, daemon, rate_mbps, below_kib, hold_ms, poll=None, binary=None, stall_journal=False):
        """One ramp against one freshly started daemon. Returns the ramp's JSON
        plus 'valid'/'why'."""
        start = mem_available_kib()
        threshold = start - 512 * MiB
        floor = threshold - below_kib
        ramp_argv = [self.ramp, "--threshold-kib", str(threshold), "--floor-kib", str(floor),
                     "--rate-mbps", str(rate_mbps), "--chunk-kib", "256",
                     "--max-mib", str(min(4096, (512 * MiB + below_kib) // MiB + 512)),
                     "--hold-ms", str(hold_ms), "--timeout-ms", "15000", "--wait-go"]
        if daemon == "oomguard":
            ramp_argv += ["--fifo", self.fifo]
        # The ramp exists (idle) before the daemon starts, as a workload would.
        r = self.spawn(ramp_argv, stdout=subprocess.PIPE, stdin=subprocess.PIPE)
        p = None
        try:
            if daemon == "oomguard":
                p = self.start_oomguard(self.oomguard_config(threshold, self.fifo, poll=poll), binary=binary,
                                        log_target="journal" if stall_journal else "stderr")
            else:
                p = self.start_earlyoom(self.earlyoom_argv(threshold))
            if stall_journal:
                self.journald.stall()
            out, _ = r.communicate(b"go\n", timeout=30)
        finally:
            if stall_journal:
                self.journald.resume()
            self.stop(r)
            if p is not None:
                (self.stop_oomguard if daemon == "oomguard" else self.stop_earlyoom)(p)
        try:
            res = json.loads(out.decode())
        except ValueError:
            res = {"crossed": False, "end": f"ramp died (exit {r.returncode})", "t_action_ns": 0,
                   "latency_us": -1, "rate_mbps": 0}
        res["daemon"] = daemon
        res["valid"], res["why"] = True, ""
        if not res["crossed"]:
            res["valid"], res["why"] = False, f"never crossed ({res['end']}): other memory users moved MemAvailable"
        elif res["t_action_ns"] == 0:
            res["valid"], res["why"] = False, "no action within the hold time"
        elif res["t_action_ns"] < res["t_cross_ns"] - 2_000_000:
            res["valid"], res["why"] = False, "acted before the ramp crossed: other memory users"
        self.wait_memory_settled(start - 128 * MiB)
        time.sleep(0.2)
        return res

    def run_episodes(self, label, rate_mbps, below_kib, hold_ms, n, daemons=("oomguard", "earlyoom"),
                     poll=None, keep_no_action=False):
        """n valid episodes per daemon, interleaved (the order alternates), with
        a bounded number of retries for episodes spoiled by other memory users."""
        got = {d: [] for d in daemons}
        discarded = {d: [] for d in daemons}
        attempts = 0
        i = 0
        while any(len(got[d]) < n for d in daemons) and attempts < 3 * n * len(daemons):
            order = list(daemons) if i % 2 == 0 else list(reversed(daemons))
            i += 1
            for d in order:
                if len(got[d]) >= n:
                    continue
                attempts += 1
                res = self.episode(d, rate_mbps, below_kib, hold_ms, poll=poll)
                ok = res["valid"] or (keep_no_action and res["crossed"] and res["t_action_ns"] == 0)
                (got[d] if ok else discarded[d]).append(res)
                lat = res["latency_us"] / 1000
                print(f"  {label} {d:9s} #{len(got[d]):2d} latency {lat:8.2f} ms rate {res['rate_mbps']:7.0f} MB/s"
                      f" end={res['end']}{'' if ok else ' DISCARDED: ' + res['why']}", flush=True)
        return got, discarded

    # ---- fake-meminfo episodes (issue 17) ----------------------------------
    def fake_proc(self, avail_kib):
        """The fake proc root (one meminfo), set to avail_kib, same format as oomg_ramp writes."""
        proc = os.path.join(self.tmp, "fake-proc")
        os.makedirs(proc, exist_ok=True)
        path = os.path.join(proc, "meminfo")
        with open(path, "w") as f:
            f.write(f"MemTotal:       {FAKE_TOTAL:15d} kB\nMemFree:        {avail_kib:15d} kB\n"
                    f"MemAvailable:   {avail_kib:15d} kB\nSwapTotal:      {0:15d} kB\n"
                    f"SwapFree:       {0:15d} kB\n")
        return proc, path

    def start_earlyoom_fake(self, meminfo, argv):
        """earlyoom reading `meminfo` as its /proc/meminfo (a bind mount in its own
        mount namespace; unshare and sh exec, so the pid is earlyoom's)."""
        inner = " ".join(shlex.quote(a) for a in argv)
        return self.start_earlyoom(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                    f"mount --bind {shlex.quote(meminfo)} /proc/meminfo && exec {inner}"])

    def fake_episode(self, daemon, rate_mbps, start_headroom_kib, margin_kib, hold_ms=500):
        threshold = FAKE_THRESHOLD
        start = threshold + start_headroom_kib
        proc, meminfo = self.fake_proc(start)
        ramp_argv = [self.ramp, "--fake-meminfo", meminfo, "--fake-total-kib", str(FAKE_TOTAL),
                     "--fake-start-kib", str(start), "--threshold-kib", str(threshold),
                     "--floor-kib", str(threshold - margin_kib), "--rate-mbps", str(rate_mbps),
                     "--hold-ms", str(hold_ms), "--timeout-ms", "15000", "--wait-go"]
        if daemon == "oomguard":
            ramp_argv += ["--fifo", self.fifo]
        r = self.spawn(ramp_argv, stdout=subprocess.PIPE, stdin=subprocess.PIPE)
        p = None
        try:
            if daemon == "oomguard":
                cfg = self.oomguard_config(threshold, self.fifo, psi=False)
                p = self.start_oomguard(cfg, extra=("--proc-root", proc))
            else:
                p = self.start_earlyoom_fake(meminfo, self.earlyoom_argv(threshold))
            # Steady memory first, for a random while: the spike starts at a random
            # phase of either daemon's sleep.
            time.sleep(random.uniform(1.0, 2.0))
            out, _ = r.communicate(b"go\n", timeout=30)
        finally:
            self.stop(r)
            if p is not None:
                (self.stop_oomguard if daemon == "oomguard" else self.stop_earlyoom)(p)
        try:
            res = json.loads(out.decode())
        except ValueError:
            res = {"crossed": False, "end": f"ramp died (exit {r.returncode})", "t_action_ns": 0,
                   "latency_us": -1, "rate_mbps": 0, "floor_first": True}
        res["daemon"] = daemon
        res["valid"], res["why"] = True, ""
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
                out[label] = self.summarize_episodes(got, disc)
        self.results["fakespikes"] = out

    def private_bus(self):
        """A private system-type dbus-daemon, as on a node (issue 17): the shipped
        oomguard connects to it through DBUS_SYSTEM_BUS_ADDRESS and owns its name."""
        sock = os.path.join(self.tmp, "system_bus_socket")
        conf = os.path.join(self.tmp, "bus.conf")
        with open(conf, "w") as f:
            f.write('<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" '
                    '"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">\n'
                    f'<busconfig><type>system</type><listen>unix:path={sock}</listen><auth>EXTERNAL</auth>'
                    '<policy context="default"><allow user="*"/><allow own="*"/>'
                    '<allow send_destination="*"/><allow receive_sender="*"/></policy></busconfig>\n')
        p = self.spawn(["dbus-daemon", "--config-file=" + conf, "--nofork", "--nopidfile"])
        deadline = time.monotonic() + 5
        while not os.path.exists(sock) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not os.path.exists(sock):
            self.stop(p)
            raise RuntimeError("dbus-daemon did not create " + sock)
        return p, "unix:path=" + sock

    def wait_log(self, name, text, timeout=5.0):
        path = os.path.join(self.tmp, name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(path, errors="replace") as f:
                if text in f.read():
                    return True
            time.sleep(0.05)
        return False

    def strace_calls(self, pids, secs):
        """Syscalls per second of each pid (all threads), from strace -c -f over secs."""
        out = {}
        procs = {}
        for k, pid in pids.items():
            path = os.path.join(self.tmp, f"strace-{pid}.txt")
            procs[k] = (self.spawn(["strace", "-c", "-f", "-q", "-o", path, "-p", str(pid)]), path)
        time.sleep(secs)
        for k, (p, path) in procs.items():
            p.send_signal(signal.SIGINT)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
            if p in self.procs:
                self.procs.remove(p)
            calls = None
            try:
                with open(path) as f:
                    for line in f:
                        if line.strip().endswith("total"):
                            calls = int(line.split()[3])
            except (OSError, ValueError, IndexError):
                pass
            out[k] = None if calls is None else calls / secs
        return out

    def bench_fakeidle(self):
        """Idle cost of both daemons at a steady fake headroom (issue 17). Every
        thread counted; the shipped oomguard both with a private system bus (as
        on a node) and with none (retries), and the poller alone (--no-dbus)."""
        secs = self.args.fakeidle_seconds
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
                before = {k: self.proc_metrics(p.pid) for k, p in daemons.items()}
                t0 = time.monotonic()
                time.sleep(secs)
                el = time.monotonic() - t0
                after = {k: self.proc_metrics(p.pid) for k, p in daemons.items()}
                calls = ({} if not have_strace or label not in ("20 GiB", "500 MiB")
                         else self.strace_calls({k: p.pid for k, p in daemons.items()}, 10))
            finally:
                for k, p in daemons.items():
                    (self.stop_earlyoom if k == "earlyoom" else self.stop_oomguard)(p)
                self.stop(bus)
            row = {}
            for k in daemons:
                b, a = before[k], after[k]
                wake = a["ctxt_all"] - b["ctxt_all"]
                row[k] = {"seconds": el, "wakeups_per_s": wake / el,
                          "cpu_ms_per_min": (a["cpu_ns_all"] - b["cpu_ns_all"]) / 1e6 * 60 / el,
                          "threads": a["threads"],
                          # The main thread alone (what the earlier tables showed).
                          "main_wakeups_per_s": (a["voluntary_ctxt_switches"] + a["nonvoluntary_ctxt_switches"]
                                                 - b["voluntary_ctxt_switches"]
                                                 - b["nonvoluntary_ctxt_switches"]) / el,
                          "main_cpu_ms_per_min": (a["cpu_ns"] - b["cpu_ns"]) / 1e6 * 60 / el}
                if calls.get(k) is not None and wake:
                    row[k]["syscalls_per_s"] = calls[k]
                    row[k]["syscalls_per_wakeup"] = calls[k] / (wake / el)
            row["registered"] = registered
            out[label] = row
            print(f"  fakeidle {label}: {row}", flush=True)
        self.results["fakeidle"] = out

    # ---- benchmarks --------------------------------------------------------
    def bench_latency(self):
        n = self.args.episodes
        out = {}
        for label, rate in (("1GB/s", 1000), ("fastest", 0)):
            print(f"latency, ramp {label}", flush=True)
            # The floor is far below the threshold so that both daemons act before it.
            got, disc = self.run_episodes(label, rate, 1536 * MiB, 2000, n)
            out[label] = self.summarize_episodes(got, disc)
        self.results["latency"] = out

    def bench_spikes(self):
        n = self.args.episodes
        print("spikes, fastest ramp, 256 MiB between threshold and floor", flush=True)
        got, disc = self.run_episodes("spike", 0, 256 * MiB, 500, n, keep_no_action=True)
        self.results["spikes"] = self.summarize_episodes(got, disc)

    def summarize_episodes(self, got, disc):
        s = {}
        for d, eps in got.items():
            acted = [e for e in eps if e["t_action_ns"]]
            lat_ms = [e["latency_us"] / 1000 for e in acted]
            # How far below the threshold memory was when the action arrived.
            over_mib = [(e["threshold_kib"] - e["end_kib"]) / 1024 for e in acted if e["end"] == "action"]
            s[d] = {
                "latency_ms": summary(lat_ms),
                "overshoot_mib": summary(over_mib) if over_mib else None,
                "rate_mbps": summary([e["rate_mbps"] for e in eps]),
                "before_floor": sum(1 for e in eps if e["t_action_ns"] and not e["floor_first"]),
                "episodes": len(eps),
                "discarded": len(disc[d]),
                "discard_reasons": sorted({e["why"] for e in disc[d]}),
                "discarded_raw": disc[d],
                "raw": eps,
            }
        return s

    def proc_metrics(self, pid):
        m = {}
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        m["cpu_ticks_ms"] = (int(fields[11]) + int(fields[12])) * 1000 / tick
        with open(f"/proc/{pid}/schedstat") as f:
            m["cpu_ns"] = int(f.read().split()[0])  # the main thread only
        # Every thread (the D-Bus thread's wakeups and CPU count too).
        m["cpu_ns_all"] = m["ctxt_all"] = m["threads"] = 0
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                    m["cpu_ns_all"] += int(f.read().split()[0])
                with open(f"/proc/{pid}/task/{task}/status") as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                            m["ctxt_all"] += int(line.split(":")[1])
                m["threads"] += 1
            except OSError:
                pass  # the thread exited meanwhile
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmLck", "VmHWM", "RssAnon", "RssFile", "VmSize"):
                    m[k + "_kib"] = int(v.split()[0])
                elif k in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
                    m[k] = int(v)
        # Resident pages in locked mappings (VmFlags "lo"): with MCL_ONFAULT
        # these are exactly the pages that are resident and locked.
        m["rss_locked_kib"] = 0
        rss = 0
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmFlags:") and " lo" in " " + line.split(":", 1)[1]:
                    m["rss_locked_kib"] += rss
        return m

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

    def bench_journal(self):
        """journald stalls (as it can under memory pressure): its socket queue is
        full and sd_journal_send() blocks. Does the trigger still go out?"""
        n = max(5, self.args.episodes // 4)
        self.journald = FakeJournald(self.args.host_mnt_ns)
        out = {}
        variants = [("this build", None)]
        if self.args.compare_oomguard:
            variants.append((f"compare: {self.args.compare_oomguard}", self.args.compare_oomguard))
        try:
            for label, binary in variants:
                print(f"stalled journald, 1GB/s ramp: {label}", flush=True)
                eps = []
                for i in range(n):
                    res = self.episode("oomguard", 1000, 1536 * MiB, 2000, binary=binary, stall_journal=True)
                    eps.append(res)
                    lat = res["latency_us"] / 1000
                    print(f"  #{i + 1} {'acted' if res['t_action_ns'] else 'NO ACTION'} latency {lat:.2f} ms",
                          flush=True)
                acted = [e for e in eps if e["crossed"] and e["t_action_ns"]]
                out[label] = {"episodes": len(eps), "acted": len(acted),
                              "latency_ms": summary([e["latency_us"] / 1000 for e in acted]), "raw": eps}
        finally:
            self.journald.close()
        self.results["journal"] = out

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

    def bench_tune(self):
        """Latency at the fastest ramp for several assumed fill rates."""
        n = max(5, self.args.episodes // 2)
        out = {}
        for fill in self.args.tune_fill_rates.split(","):
            label = f"fill_rate {fill}"
            print(f"tune: {label}", flush=True)
            got, disc = self.run_episodes(label, 0, 1536 * MiB, 2000, n, daemons=("oomguard",),
                                          poll={"fill_rate": fill})
            out[fill] = self.summarize_episodes(got, disc)["oomguard"]
        self.results["tune"] = out

    def run(self):
        only = self.args.only.split(",")
        for name in ALL:
            if name in only:
                getattr(self, "bench_" + name)()


# ---- report -------------------------------------------------------------------

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

    lat = results.get("latency")
    if lat:
        L.append("## 1. Reaction latency on real memory\n")
        L.append("From the ramp's first read of MemAvailable below the threshold (threshold = MemAvailable at "
                 "episode start − 512 MiB) to the action: the trigger byte arriving on the bench's FIFO "
                 "(oomguard, `mode = \"sysrq\"`, shipped config otherwise) or SIGTERM arriving in the ramp "
                 "(earlyoom `-M <threshold KiB>`). Each daemon is started fresh for each episode. "
                 "Overshoot: how far below the threshold MemAvailable was when the action arrived.\n")
        L.append("| ramp | daemon | episodes (discarded) | ramp MB/s p50 | p50 ms | p95 ms | max ms | overshoot p50 MiB "
                 "| earlyoom/oomguard p50 |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for label, s in lat.items():
            og, eo = s.get("oomguard"), s.get("earlyoom")
            ratio = eo["latency_ms"]["p50"] / og["latency_ms"]["p50"] if og and eo and og["latency_ms"]["p50"] > 0 \
                else float("nan")
            for d in ("oomguard", "earlyoom"):
                x = s.get(d)
                if not x:
                    continue
                L.append(f"| {label} | {d} | {x['episodes']} ({x['discarded']}) | {fmt(x['rate_mbps']['p50'], 0)} | "
                         f"{fmt(x['latency_ms']['p50'])} | {fmt(x['latency_ms']['p95'])} | "
                         f"{fmt(x['latency_ms']['max'])} | "
                         f"{fmt(x['overshoot_mib']['p50'] if x['overshoot_mib'] else None, 1)} | "
                         f"{fmt(ratio, 1) + '×' if d == 'oomguard' else ''} |")
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
        L.append("")

    jr = results.get("journal")
    if jr:
        L.append("## 1b. Reaction with journald stalled\n")
        L.append("oomguard logging to journald (`--log-target=journal`), whose socket queue is full and unread from "
                 "just before the ramp starts (a journald stuck under memory pressure; `sd_journal_send()` then blocks). "
                 "1 GB/s ramp; the ramp holds below the threshold for 2 s.\n")
        L.append("| oomguard binary | episodes | trigger arrived | p50 ms | p95 ms | max ms |")
        L.append("|---|---|---|---|---|---|")
        for label, x in jr.items():
            L.append(f"| {label} | {x['episodes']} | {x['acted']} | {fmt(x['latency_ms']['p50'])} | "
                     f"{fmt(x['latency_ms']['p95'])} | {fmt(x['latency_ms']['max'])} |")
        L.append("")

    sp = results.get("spikes")
    if sp:
        L.append("## 2. Fast spikes\n")
        L.append("Fastest ramp; the ramp stops at a floor 256 MiB below the threshold and holds for 500 ms. "
                 "Caught = the action arrived before the ramp read MemAvailable below the floor.\n")
        L.append("| daemon | caught before floor | share | ramp MB/s p50 | latency p50 ms | p95 ms | max ms |")
        L.append("|---|---|---|---|---|---|---|")
        for d in ("oomguard", "earlyoom"):
            x = sp.get(d)
            if not x:
                continue
            share = x["before_floor"] / x["episodes"] if x["episodes"] else float("nan")
            x["share"] = share
            L.append(f"| {d} | {x['before_floor']}/{x['episodes']} | {share * 100:.0f}% | "
                     f"{fmt(x['rate_mbps']['p50'], 0)} | {fmt(x['latency_ms']['p50'])} | "
                     f"{fmt(x['latency_ms']['p95'])} | {fmt(x['latency_ms']['max'])} |")
        if "oomguard" in sp and "earlyoom" in sp:
            a, b = sp["oomguard"]["share"], sp["earlyoom"]["share"]
            targets.append(("spikes caught ≥ earlyoom's share", f"{a * 100:.0f}% vs {b * 100:.0f}%", a >= b))
        L.append("")

    idle = results.get("idle")
    if idle:
        secs = next(iter(idle.values()))["seconds"]
        L.append("## 3. Idle cost\n")
        L.append(f"All daemons at once for {secs:.0f} s with plenty of free memory, oomguard with the shipped "
                 "config unless stated. CPU from /proc/<pid>/schedstat "
                 "(ns; utime+stime from /proc/<pid>/stat has 10 ms ticks and is shown too). Wakeups = context "
                 "switches per second. Locked resident = the RSS of mappings that are mlocked (VmFlags `lo` in "
                 "/proc/<pid>/smaps; with MCL_ONFAULT every resident page of such a mapping is locked); VmLck "
                 "counts whole locked mappings, resident or not. RssFile is mostly shared library text that other "
                 "processes map too; RssAnon is the daemon's own memory.\n")
        L.append("| daemon | CPU ms (schedstat) | CPU ms (stat ticks) | wakeups/s | RSS KiB | locked resident KiB "
                 "| VmLck KiB | RssAnon KiB | RssFile KiB |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for k, x in idle.items():
            L.append(f"| {k} | {fmt(x['cpu_ms'])} | {fmt(x['cpu_ticks_ms'], 0)} | {fmt(x['wakeups_per_s'])} | "
                     f"{x['rss_kib']} | {x['locked_resident_kib']} | {x['vmlck_kib']} | {x['rss_anon_kib']} | "
                     f"{x['rss_file_kib']} |")
        eo = next((x for k, x in idle.items() if k.startswith("earlyoom")), None)
        og = next((x for k, x in idle.items() if "as under systemd" in k), None)
        if eo and og:
            targets.append(("idle CPU ≤ earlyoom's", f"{fmt(og['cpu_ms'])} vs {fmt(eo['cpu_ms'])} ms",
                            og["cpu_ms"] <= eo["cpu_ms"]))
            targets.append(("RSS ≤ 4 MiB, all locked",
                            f"RSS {og['rss_kib']} KiB, locked resident {og['locked_resident_kib']} KiB",
                            og["rss_kib"] <= 4096 and og["locked_resident_kib"] >= og["rss_kib"] - 8))
        L.append("")

    unit = results.get("unit")
    if unit:
        L.append("## 4. Unit costs\n")
        L.append("Per operation; rounds of blocks interleaved; p50/p95 over rounds.\n")
        L.append("| operation | p50 µs | p95 µs | vs floor (p50) |")
        L.append("|---|---|---|---|")
        floors = {"meminfo_sample": "pread_meminfo_floor", "trigger_fire_fifo": "write_kept_fd_floor"}
        for name, x in unit.items():
            fl = floors.get(name)
            ratio = f"{x['p50_ns'] / unit[fl]['p50_ns']:.2f}×" if fl in unit else ""
            L.append(f"| {name} | {fmt(x['p50_ns'] / 1000, 3)} | {fmt(x['p95_ns'] / 1000, 3)} | {ratio} |")
        L.append("| scan 110x4 / 1000 pods | see bench/cgroup_scan_bench | | |")
        if "meminfo_sample" in unit:
            r = unit["meminfo_sample"]["p50_ns"] / unit["pread_meminfo_floor"]["p50_ns"]
            targets.append(("MemAvailable sample within 1.5× of a bare pread", f"{r:.2f}×", r <= 1.5))
        L.append("")

    st = results.get("startup")
    if st:
        L.append("## 5. Startup\n")
        L.append("oomguard: spawn to READY=1 on the bench's NOTIFY_SOCKET (config parsed, meminfo open, first "
                 "sample, mlockall). earlyoom has no READY; shown is spawn to the last line of its startup banner. "
                 "Floor: spawn and exit of /bin/true.\n")
        L.append("| program | runs | p50 ms | p95 ms | max ms |")
        L.append("|---|---|---|---|---|")
        for k, label in (("oomguard", "oomguard to READY"), ("earlyoom", "earlyoom to banner"),
                         ("spawn_floor", "/bin/true spawn+exit")):
            x = st[k]
            L.append(f"| {label} | {x['n']} | {fmt(x['p50'])} | {fmt(x['p95'])} | {fmt(x['max'])} |")
        L.append("")

    fs = results.get("fakespikes")
    if fs:
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
        L.append("| spike | daemon | caught before floor | latency p50 ms | p95 ms | max ms | "
                 "earlyoom p50 / oomguard p50 |")
        L.append("|---|---|---|---|---|---|---|")
        for label, s in fs.items():
            og, eo = s.get("oomguard"), s.get("earlyoom")
            ratio = (eo["latency_ms"]["p50"] / og["latency_ms"]["p50"]
                     if og and eo and og["latency_ms"]["p50"] and og["latency_ms"]["p50"] > 0 else float("nan"))
            for d in ("oomguard", "earlyoom"):
                x = s.get(d)
                if not x:
                    continue
                L.append(f"| {label} | {d} | {x['before_floor']}/{x['episodes']} | {fmt(x['latency_ms']['p50'])} | "
                         f"{fmt(x['latency_ms']['p95'])} | {fmt(x['latency_ms']['max'])} | "
                         f"{fmt(ratio, 1) + '×' if d == 'oomguard' else ''} |")
            if label.startswith("10 GB/s, margin 256") and og and eo:
                targets.append(("10 GB/s spike, 256 MiB margin: 10/10 caught",
                                f"{og['before_floor']}/{og['episodes']}", og["before_floor"] == og["episodes"]))
                targets.append(("10 GB/s spike: oomguard p50 <= earlyoom p50 / 10",
                                f"{fmt(og['latency_ms']['p50'])} vs {fmt(eo['latency_ms']['p50'])} ms",
                                og["latency_ms"]["p50"] is not None and eo["latency_ms"]["p50"] is not None
                                and og["latency_ms"]["p50"] <= eo["latency_ms"]["p50"] / 10))
        L.append("")

    fi = results.get("fakeidle")
    if fi:
        L.append("## 3b. Idle cost at a steady fake headroom (issue 17)\n")
        L.append("All daemons at once on the same fake meminfo, MemAvailable held at the given headroom above "
                 "the threshold; shipped config (oomguard, `psi = false`), `-M <threshold KiB> -r 0` (earlyoom). "
                 "Wakeups = context switches per second of every thread (/proc/<pid>/task/*/status); CPU = "
                 "sum of every thread's /proc/<pid>/task/*/schedstat, scaled to one minute. Syscalls per wakeup: "
                 "strace -c -f over 10 s after the measurement, divided by the wakeups of the clean window.\n")
        L.append("`oomguard, system bus` is the shipped daemon connected to a private system-type dbus-daemon "
                 "and owning org.oomguard1, as on a node; this row is the one the targets use. `oomguard, no bus` "
                 "has no bus socket and retries (backoff to 30 s); `oomguard --no-dbus` is the poller alone.\n")
        kinds = ["oomguard, system bus", "oomguard, no bus", "oomguard --no-dbus", "earlyoom"]
        L.append("| steady headroom | " + " | ".join(f"{k} wakeups/s" for k in kinds) + " | "
                 + " | ".join(f"{k} CPU ms/min" for k in kinds) + " |")
        L.append("|---|" + "---|" * (2 * len(kinds)))
        for label, x in fi.items():
            L.append(f"| {label} | " + " | ".join(fmt(x.get(k, {}).get("wakeups_per_s")) for k in kinds) + " | "
                     + " | ".join(fmt(x.get(k, {}).get("cpu_ms_per_min")) for k in kinds) + " |")
        if any("syscalls_per_wakeup" in v for x in fi.values() for v in x.values() if isinstance(v, dict)):
            L.append("\n| steady headroom | " + " | ".join(f"{k} syscalls/wakeup" for k in kinds) + " |")
            L.append("|---|" + "---|" * len(kinds))
            for label, x in fi.items():
                if any("syscalls_per_wakeup" in x.get(k, {}) for k in kinds):
                    L.append(f"| {label} | " + " | ".join(fmt(x.get(k, {}).get("syscalls_per_wakeup"), 1)
                                                        for k in kinds) + " |")
        for label, x in fi.items():
            if label in ("20 GiB", "500 MiB"):
                og, eo = x["oomguard, system bus"], x["earlyoom"]
                if not x.get("registered", True):
                    targets.append((f"idle at {label}: the shipped daemon registered on the private bus",
                                    "not registered", False))
                targets.append((f"idle at {label}: wakeups/s no worse than earlyoom (oomguard, system bus)",
                                f"{fmt(og['wakeups_per_s'])} vs {fmt(eo['wakeups_per_s'])}",
                                og["wakeups_per_s"] <= eo["wakeups_per_s"]))
                targets.append((f"idle at {label}: CPU/min no worse than earlyoom (oomguard, system bus)",
                                f"{fmt(og['cpu_ms_per_min'])} vs {fmt(eo['cpu_ms_per_min'])} ms",
                                og["cpu_ms_per_min"] <= eo["cpu_ms_per_min"]))
        L.append("")

    hv = results.get("hover")
    if hv:
        L.append("## 6a. The price of adaptive polling: oomguard's CPU while MemAvailable holds still\n")
        L.append("Shipped [poll] settings; a fake proc root whose MemAvailable stays at the given headroom above "
                 "the threshold. Expected polls/s = fill_rate / headroom, clamped to [1/max_interval, "
                 "1/min_interval].\n")
        L.append("| headroom | wakeups/s | CPU % of one core | CPU µs per wakeup |")
        L.append("|---|---|---|---|")
        for label, x in hv.items():
            L.append(f"| {label} | {fmt(x['wakeups_per_s'], 1)} | {fmt(x['cpu_percent'], 3)} | "
                     f"{fmt(x['cpu_us_per_wakeup'], 1)} |")
        L.append("")

    tune = results.get("tune")
    if tune:
        L.append("## 6b. Polling tuning: oomguard alone at the fastest ramp, by assumed fill_rate\n")
        L.append("| fill_rate | episodes | ramp MB/s p50 | p50 ms | p95 ms | max ms | overshoot p50 MiB |")
        L.append("|---|---|---|---|---|---|---|")
        for fill, x in tune.items():
            L.append(f"| {fill} | {x['episodes']} | {fmt(x['rate_mbps']['p50'], 0)} | {fmt(x['latency_ms']['p50'])} | "
                     f"{fmt(x['latency_ms']['p95'])} | {fmt(x['latency_ms']['max'])} | "
                     f"{fmt(x['overshoot_mib']['p50'] if x['overshoot_mib'] else None, 1)} |")
        L.append("")

    psi = results.get("psi")
    if psi and "candidates" in psi:
        L.append("## 6c. PSI trigger constants under real memory stalls\n")
        L.append(f"A reader looping over a 96 MiB file in a 64 MiB memory cgroup for {psi['seconds']} s "
                 f"(page cache dropped first, so it reclaims inside the cgroup): {psi['stall_ms']:.0f} ms of "
                 f"system-wide `some` stall. Each candidate is a PSI trigger opened by the bench at the same time. "
                 f"CAP_SYS_RESOURCE: {'yes' if psi['cap_sys_resource'] else 'no (windows must be multiples of 2 s)'}. "
                 f"oomguard uses 20ms/500ms, or 50ms/2s without CAP_SYS_RESOURCE.\n")
        L.append("| some stall / window | events | first event ms | all events ms |")
        L.append("|---|---|---|---|")
        for k, x in psi["candidates"].items():
            if "rejected" in x:
                L.append(f"| {k} | rejected by the kernel: {x['rejected']} | | |")
            else:
                L.append(f"| {k} | {x['events']} | {fmt(x['first_ms'], 0)} | {x['times_ms']} |")
        L.append("")

    if targets:
        L.append("## Targets\n")
        L.append("| target | measured | met |")
        L.append("|---|---|---|")
        for name, val, ok in targets:
            L.append(f"| {name} | {val} | {'yes' if ok else '**no**'} |")
        L.append("| scan of 110×4 within 2× of the pread floor | see bench/cgroup_scan_bench | |")
        L.append("")
    return "\n".join(L) + "\n"


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
    ap.add_argument("--fakeidle-seconds", type=int, default=30)
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
