"""The bench's processes (bench/run.py): spawning and stopping them, starting
oomguard and earlyoom (also on a fake meminfo), a stalled journald, a private
system bus, and reading a daemon's cost from /proc (CPU, wakeups, RSS, strace)."""

import json
import os
import re
import select
import shlex
import signal
import socket
import subprocess
import threading
import time

from common import FAKE_TOTAL, MiB, ROOT


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


class Harness:
    """The bench's process and daemon helpers; everything here runs inside the
    PID namespace. The bench groups (ramps, fakemem, costs) are mixins on it."""

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

    def ramp_episode(self, daemon, ramp_argv, start_daemon, before_go, after_go=None, died=None):
        """Runs oomg_ramp ramp_argv against the daemon start_daemon() starts (the
        ramp exists, idle, before the daemon starts, as a workload would), says
        "go" after before_go(); stops both (after after_go()). Returns the ramp's
        JSON plus 'daemon', 'valid' = True and 'why' = ""; if the ramp died, a
        stand-in that never crossed, updated with `died`."""
        if daemon == "oomguard":
            ramp_argv = ramp_argv + ["--fifo", self.fifo]
        r = self.spawn(ramp_argv, stdout=subprocess.PIPE, stdin=subprocess.PIPE)
        p = None
        try:
            p = start_daemon()
            before_go()
            out, _ = r.communicate(b"go\n", timeout=30)
        finally:
            if after_go:
                after_go()
            self.stop(r)
            if p is not None:
                (self.stop_oomguard if daemon == "oomguard" else self.stop_earlyoom)(p)
        try:
            res = json.loads(out.decode())
        except ValueError:
            res = {"crossed": False, "end": f"ramp died (exit {r.returncode})", "t_action_ns": 0,
                   "latency_us": -1, "rate_mbps": 0, **(died or {})}
        res["daemon"] = daemon
        res["valid"], res["why"] = True, ""
        return res

    # ---- fake meminfo (issue 17), private bus, measurements ----------------
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
