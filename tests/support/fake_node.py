"""A fake node for tests that run the real oomguard binary (the Python side of
tests/support): a proc root whose meminfo is rewritten in place, PSI totals and
vmstat, a cgroup v2 tree laid out by kubelet's systemd driver with
/var/log/pods names, a kmsg file and a trigger file (never the real sysrq
trigger); a process runner that stops what it started; and wait/check helpers
that log what they saw.
"""
import os
import shutil
import socket
import signal
import subprocess
import time

MiB = 1 << 20
GiB = 1 << 30
DEADLINE = time.monotonic() + 150  # the whole test; meson's timeout is larger

t0 = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - t0:6.2f}s] {msg}", flush=True)


def which(*names):
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    return None


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write(path, text, mode="w"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, mode) as f:
        f.write(text)


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)
    log("ok: " + what)


# --- the fake node -----------------------------------------------------------

def pod_uid(n):
    return "%08x-%04x-4%03x-8%03x-%012x" % (0x1234 + n, n & 0xffff, n & 0xfff, (n * 3) & 0xfff,
                                           (n * 2654435761) & 0xffffffffffff)


def container_id(n):
    return "%016x%016x%016x%016x" % (0xc0ffee + n, n * 7919, n, 0xabcd + n)


class FakeNode:
    # (qos, namespace, pod, working set of each of its containers in MiB)
    PODS = [("burstable", "shop", "web-1", [900, 300]),
            ("besteffort", "team-b", "batch-7", [500]),
            ("burstable", "team-a", "db-0", [200])]

    def __init__(self, d):
        self.d = d
        self.proc = os.path.join(d, "proc")
        self.cg = os.path.join(d, "cgroup")
        self.logs = os.path.join(d, "log")
        self.kmsg = os.path.join(d, "kmsg")
        self.trigger = os.path.join(d, "trigger")
        self.textdir = os.path.join(d, "textfile")
        self.total = 16 * GiB
        os.makedirs(self.textdir)
        write(self.kmsg, "")
        write(self.trigger, "")
        self.meminfo = os.path.join(self.proc, "meminfo")
        write(self.meminfo, self._meminfo(8 * GiB))
        self.set_pressure(1_500_000, 250_000)
        self.set_vmstat(5)
        write(os.path.join(self.cg, "cgroup.controllers"), "cpuset cpu io memory pids\n")
        # kubepods limited to 14 GiB: node allocatable is enforced.
        self.cgroup("kubepods.slice", 0, limit=14 * GiB)
        self.cgroup("kubepods.slice/kubepods-burstable.slice", 0)
        self.cgroup("kubepods.slice/kubepods-besteffort.slice", 0)
        self.containers = {}
        for i, (qos, ns, name, sets) in enumerate(self.PODS):
            uid = pod_uid(i)
            pod_dir = (f"kubepods.slice/kubepods-{qos}.slice/"
                       f"kubepods-{qos}-pod{uid.replace('-', '_')}.slice")
            self.cgroup(pod_dir, sum(sets) * MiB)
            os.makedirs(os.path.join(self.logs, "pods", f"{ns}_{name}_{uid}"))
            for c, ws in enumerate(sets):
                cid = container_id(i * 4 + c)
                cdir = f"{pod_dir}/cri-containerd-{cid}.scope"
                self.cgroup(cdir, ws * MiB)
                log_file = os.path.join(self.logs, "pods", f"{ns}_{name}_{uid}", f"c{c}", "0.log")
                write(log_file, "")
                os.makedirs(os.path.join(self.logs, "containers"), exist_ok=True)
                os.symlink(log_file, os.path.join(self.logs, "containers",
                                                  f"{name}_{ns}_c{c}-{cid}.log"))
                self.containers[(ns, name, c)] = "/" + cdir

    def cgroup(self, rel, usage, limit=0):
        d = os.path.join(self.cg, rel)
        os.makedirs(d, exist_ok=True)
        write(os.path.join(d, "memory.current"), f"{usage}\n")
        write(os.path.join(d, "memory.max"), f"{limit}\n" if limit else "max\n")
        write(os.path.join(d, "memory.oom.group"), "1\n")
        write(os.path.join(d, "memory.stat"),
              f"anon {usage}\nfile 0\ninactive_anon 0\nactive_anon {usage}\n"
              f"inactive_file 0\nactive_file 0\nunevictable 0\n")
        write(os.path.join(d, "cgroup.procs"), "")

    def _meminfo(self, avail):
        # Fixed width, rewritten in place: the daemon keeps the fd and preads it.
        return ("MemTotal:       %12d kB\nMemFree:        %12d kB\nMemAvailable:   %12d kB\n"
                % (self.total // 1024, avail // 1024, avail // 1024))

    def set_available(self, avail):
        fd = os.open(self.meminfo, os.O_WRONLY)
        try:
            os.pwrite(fd, self._meminfo(avail).encode(), 0)
        finally:
            os.close(fd)

    def set_pressure(self, some_us, full_us):
        self.some_us, self.full_us = some_us, full_us
        write(os.path.join(self.proc, "pressure", "memory"),
              f"some avg10=1.50 avg60=0.80 avg300=0.20 total={some_us}\n"
              f"full avg10=0.40 avg60=0.10 avg300=0.02 total={full_us}\n")

    def set_vmstat(self, oom_kill):
        self.oom_kill = oom_kill
        write(os.path.join(self.proc, "vmstat"),
              f"nr_free_pages 1000\npgfault 12345\noom_kill {oom_kill}\n")

    def kmsg_append(self, text):
        with open(self.kmsg, "a") as f:
            f.write(text)

    def f_count(self):
        with open(self.trigger) as f:
            return f.read().count("f")

    def config(self):
        return f"""[memory]
min_available = "2GiB"
warn_available = "3GiB"
recover_available = "4GiB"
[action]
sysrq_trigger = "{self.trigger}"
repeat_after = "1h"
[poll]
psi = false
max_interval = "50ms"
[paths]
proc = "{self.proc}"
cgroup = "{self.cg}"
kmsg = "{self.kmsg}"
lock = ""
[kubernetes]
pod_logs_dir = "{os.path.join(self.logs, 'pods')}"
scan_budget = "1s"
[metrics]
textfile = "{os.path.join(self.textdir, 'oomguard.prom')}"
interval = "1s"
"""


# --- processes ---------------------------------------------------------------

class Proc:
    def __init__(self, name, argv, logdir):
        self.name = name
        self.log_path = os.path.join(logdir, name + ".log")
        self.logf = open(self.log_path, "w")
        self.p = subprocess.Popen(argv, stdout=self.logf, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)

    def alive(self):
        return self.p.poll() is None

    def stop(self, timeout=10):
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.logf.close()
        return self.p.returncode

    def log(self, tail=40):
        with open(self.log_path, errors="replace") as f:
            return "".join(f.readlines()[-tail:])


def wait_until(what, fn, timeout=20, procs=()):
    end = min(time.monotonic() + timeout, DEADLINE)
    last = None
    while time.monotonic() < end:
        for p in procs:
            if not p.alive():
                raise Failure(f"{p.name} exited ({p.p.returncode}) while waiting for {what}:\n"
                              + p.log())
        try:
            last = fn()
            if last:
                log("ok: " + what)
                return last
        except (OSError, ValueError, KeyError) as e:
            last = e
        time.sleep(0.2)
    raise Failure(f"timed out waiting for {what} (last: {last!r})")


