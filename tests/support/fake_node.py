"""The one fake node of the Python tests that run the real oomguard binary (the
Python side of tests/support), so that every such test gets the same hermetic
run: a temp dir of its own holding a proc root whose meminfo is rewritten in
place (PSI totals, vmstat and tasks when asked), a cgroup v2 tree laid out by
kubelet's systemd driver with /var/log/pods names, a kmsg file, a trigger file
(never the real sysrq trigger) and a config that points the daemon at them; a
process runner that stops what it started; and wait/check helpers that log what
they saw.
"""
import os
import shutil
import socket
import signal
import subprocess
import tempfile
import time

MiB = 1 << 20
GiB = 1 << 30
DEADLINE = time.monotonic() + 150  # the whole test; meson's timeout is larger
SRC = os.environ.get("OOMGUARD_SOURCE_DIR",
                     os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
OOMGUARD = os.environ.get("OOMGUARD_BIN", os.path.join(SRC, "build/src/oomguard"))
# The host's service manager, journal and system bus: a test daemon talks to none.
HOST_ENV = ("NOTIFY_SOCKET", "JOURNAL_STREAM", "DBUS_SYSTEM_BUS_ADDRESS")

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


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def write_meminfo(path, total, available, free=None):
    """A fake meminfo of fixed width, rewritten in place: the daemon keeps the
    fd and preads it."""
    free = available if free is None else free
    text = ("MemTotal:       %12d kB\nMemFree:        %12d kB\nMemAvailable:   %12d kB\n"
            % (total // 1024, free // 1024, available // 1024))
    if not os.path.exists(path):
        write(path, text)
        return
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, text.encode(), 0)
    finally:
        os.close(fd)


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


def toml(sections):
    out = []
    for name, keys in sections.items():
        out.append(f"[{name}]")
        for k, v in keys.items():
            out.append(f"{k} = {str(v).lower()}" if isinstance(v, bool) else f'{k} = "{v}"')
    return "\n".join(out) + "\n"


class FakeNode:
    # (qos, namespace, pod, [(container, working set in MiB)])
    PODS = [("burstable", "shop", "web-1", [("c0", 900), ("c1", 300)]),
            ("besteffort", "team-b", "batch-7", [("c0", 500)]),
            ("burstable", "team-a", "db-0", [("c0", 200)])]
    # Config sections on top of the paths into the node.
    SETTINGS = {"memory": {"min_available": "2GiB", "warn_available": "3GiB",
                           "recover_available": "4GiB"},
                "action": {"repeat_after": "1h"},
                "poll": {"max_interval": "50ms"},
                "kubernetes": {"scan_budget": "1s"}}

    def __init__(self, d=None, prefix="oomguard-node-", total=16 * GiB, available=8 * GiB,
                 kubepods_limit=14 * GiB, pods=PODS, pressure=(1_500_000, 250_000), oom_kills=5,
                 settings=SETTINGS, metrics_interval="1s"):
        """d: a directory of the caller's; else a temp dir of the node's own,
        removed by close(). pressure (PSI some/full totals in us) and oom_kills
        (vmstat) None: no such file under the proc root. metrics_interval
        None: no metrics textfile."""
        self.own_dir = d is None
        self.d = tempfile.mkdtemp(prefix=prefix) if d is None else d
        self.daemon = None
        try:
            self._lay_out(total, available, kubepods_limit, pods, pressure, oom_kills, settings,
                          metrics_interval)
        except BaseException:
            self.close()
            raise

    @classmethod
    def small(cls):
        """The ops tests' node: MemTotal 4 GiB, 2 GiB available, thresholds
        350/700 MiB, kubepods without a limit, one BestEffort pod shop/web-1
        (2.1 GiB), no PSI or vmstat file, no metrics."""
        node = cls(prefix="oomguard-ops-", total=4 * GiB, available=2048 * MiB, kubepods_limit=0,
                   pods=[("besteffort", "shop", "web-1", [("web", 2150)])], pressure=None,
                   oom_kills=None, metrics_interval=None,
                   settings={"memory": {"min_available": "350MiB", "recover_available": "700MiB"},
                             "action": {"repeat_after": "10s"}})
        # What the pod and its parents hold besides the container.
        node.cgroup("kubepods.slice", 2300 * MiB)
        node.cgroup("kubepods.slice/kubepods-besteffort.slice", 2200 * MiB)
        node.cgroup(node.pods[("shop", "web-1")].lstrip("/"), 2200 * MiB)
        return node

    def _lay_out(self, total, available, kubepods_limit, pods, pressure, oom_kills, settings,
                 metrics_interval):
        d = self.d
        self.proc = os.path.join(d, "proc")
        self.cg = os.path.join(d, "cgroup")
        self.logs = os.path.join(d, "log")
        self.kmsg = os.path.join(d, "kmsg")
        self.trigger = os.path.join(d, "trigger")
        self.textdir = os.path.join(d, "textfile")
        self.config = os.path.join(d, "oomguard.toml")
        self.total = total
        os.makedirs(self.textdir)
        write(self.kmsg, "")
        write(self.trigger, "")
        self.meminfo = os.path.join(self.proc, "meminfo")
        self.set_available(available)
        if pressure:
            self.set_pressure(*pressure)
        if oom_kills is not None:
            self.set_vmstat(oom_kills)
        write(os.path.join(self.cg, "cgroup.controllers"), "cpuset cpu io memory pids\n")
        self.cgroup("kubepods.slice", 0, limit=kubepods_limit)
        for qos in sorted({p[0] for p in pods}):
            self.cgroup(f"kubepods.slice/kubepods-{qos}.slice", 0)
        self.pods = {}
        self.containers = {}
        for i, (qos, ns, name, containers) in enumerate(pods):
            uid = pod_uid(i)
            pod_dir = (f"kubepods.slice/kubepods-{qos}.slice/"
                       f"kubepods-{qos}-pod{uid.replace('-', '_')}.slice")
            self.cgroup(pod_dir, sum(ws for _, ws in containers) * MiB)
            self.pods[(ns, name)] = "/" + pod_dir
            os.makedirs(os.path.join(self.logs, "pods", f"{ns}_{name}_{uid}"))
            for c, (cname, ws) in enumerate(containers):
                cid = container_id(i * 4 + c)
                cdir = f"{pod_dir}/cri-containerd-{cid}.scope"
                self.cgroup(cdir, ws * MiB)
                log_file = os.path.join(self.logs, "pods", f"{ns}_{name}_{uid}", cname, "0.log")
                write(log_file, "")
                os.makedirs(os.path.join(self.logs, "containers"), exist_ok=True)
                os.symlink(log_file, os.path.join(self.logs, "containers",
                                                  f"{name}_{ns}_{cname}-{cid}.log"))
                self.containers[(ns, name, c)] = "/" + cdir
        write(self.config, self.config_text(settings, metrics_interval))

    def config_text(self, settings, metrics_interval):
        # The paths keep the run hermetic: nothing of the host's is read or written.
        base = {"memory": {},
                "action": {"sysrq_trigger": self.trigger},
                "poll": {"psi": False},
                "paths": {"proc": self.proc, "cgroup": self.cg, "kmsg": self.kmsg,
                          "containerd_state": os.path.join(self.d, "run", "containerd"),
                          "crio_storage": os.path.join(self.d, "run", "containers", "storage"),
                          "lock": ""},
                "kubernetes": {"pod_logs_dir": os.path.join(self.logs, "pods")}}
        for section, keys in settings.items():
            base.setdefault(section, {}).update(keys)
        if metrics_interval:
            base["metrics"] = {"textfile": os.path.join(self.textdir, "oomguard.prom"),
                               "interval": metrics_interval}
        return toml(base)

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

    def task(self, pid, comm, adj, score, cgroup):
        """A task under the proc root with the kernel's oom_score and oom_score_adj."""
        d = os.path.join(self.proc, str(pid))
        write(os.path.join(d, "comm"), comm + "\n")
        write(os.path.join(d, "oom_score_adj"), f"{adj}\n")
        write(os.path.join(d, "oom_score"), f"{score}\n")
        write(os.path.join(d, "cgroup"), f"0::{cgroup}\n")
        write(os.path.join(d, "status"), f"Name:\t{comm}\nVmRSS:\t{score * 1024} kB\n")
        write(os.path.join(d, "stat"), f"{pid} ({comm}) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 "
                                       f"{pid} 1000 10\n")

    def set_available(self, avail):
        write_meminfo(self.meminfo, self.total, avail)

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

    def start(self, *args):
        """The real oomguard on this node: its config, no mlock, no D-Bus, none
        of the host's service manager or journal; output in oomguard.log."""
        env = {k: v for k, v in os.environ.items() if k not in HOST_ENV}
        self.daemon = Proc("oomguard", [OOMGUARD, "--config", self.config, "--no-mlock",
                                        "--no-dbus", "--allow-insecure-config", *args],
                           self.d, env=env)
        return self.daemon

    def close(self):
        if self.daemon:
            self.daemon.stop()
        if self.own_dir:
            shutil.rmtree(self.d, ignore_errors=True)


# --- processes ---------------------------------------------------------------

class Proc:
    """A process of the test's, its stdout and stderr in logdir/name.log. It
    stays in the test's process group, so that meson's timeout stops it too."""

    def __init__(self, name, argv, logdir, env=None):
        self.name = name
        self.log_path = os.path.join(logdir, name + ".log")
        self.logf = open(self.log_path, "w")
        self.p = subprocess.Popen(argv, stdout=self.logf, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=env)

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

    def output(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def log(self, tail=40):
        return "".join(self.output().splitlines(keepends=True)[-tail:])

    def wait_for(self, text, timeout=10.0):
        """True once text is in the output; False at the timeout, or when the
        process exited without it."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text in self.output():
                return True
            if not self.alive():
                return text in self.output()
            time.sleep(0.05)
        return False


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
