"""The node lab's guest helpers, shared by every scenario module and by the
node benchmark's guest (bench/node/guest/bench.py): the result lines (PASS,
FAIL, SKIP, FIG, NOTE) on the results port, commands, files and the unit's
properties, the journal and /dev/kmsg, oomguard's config file, and pods laid
out as kubelet's systemd driver lays them out. Runs inside the VM. A module
of its own, never run as a script, so that every module importing it shares
one results port and one count of results.
"""
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import uuid


LAB = os.path.dirname(os.path.abspath(__file__))
OUT = open(sys.argv[1], "w", buffering=1) if len(sys.argv) > 1 else sys.stdout
HOG = "/usr/local/bin/oomguard-node-hog"
RUN = "/run/oomguard-lab"
CG = "/sys/fs/cgroup"

MSG = {
    "start": "82abdace5af84deda3af22f8cd452b58",
    "trigger": "70f9fe7ab100420db4a8c0f2db5f4ab2",
    "trigger-failed": "0eef8c0416e845b2afda5c72a0bc1ff1",
    "recovered": "67853c0e748b4bc19a42ade6c0873e44",
    "reload": "ba1220f0b89b445f8b5aea9f4e08a18a",
    "reload-failed": "742e5bd663af4d27bb421f8489c9bbd2",
    "victim": "235aad473e0144d7a2d7f4dbf692107a",
    "audit-finding": "efa13e236c2b4aae95f0abaf3e7ff5ec",
}
SHIPPED_THRESHOLD = 350 << 20

counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}


def in_lab_vm():
    """Only a kernel booted by node_lab.py carries oomguard.lab=1: the guest scripts
    write the VM's own /proc/sysrq-trigger and must never run on a real host."""
    try:
        return "oomguard.lab=1" in open("/proc/cmdline").read().split()
    except OSError:
        return False


def emit(line):
    OUT.write(line + "\n")
    OUT.flush()
    print(line, flush=True)  # the journal and the console too


def report(kind, what, detail=""):
    counts[kind] += 1
    detail = " ".join(str(detail).split())  # one line on the port
    emit(f"{kind}: {what}" + (f" ({detail[:900]})" if detail else ""))


def check(ok, what, detail=""):
    report("PASS" if ok else "FAIL", what, detail)
    return bool(ok)


def fig(name, value):
    emit(f"FIG: {name}={value}")


def note(text):
    for line in str(text).splitlines():
        emit("NOTE: " + line[:400])


def run(cmd, timeout=120, input=None):
    env = dict(os.environ, SYSTEMD_PAGER="", SYSTEMD_COLORS="0", DEBIAN_FRONTEND="noninteractive",
               LANG="C.UTF-8", TERM="dumb", PATH="/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/bin")
    try:
        return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(cmd, 124, e.stdout or "", f"timed out after {timeout} s")


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def wait_for(pred, timeout, interval=0.2):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def show(prop, unit="oomguard"):
    return run(["systemctl", "show", "-P", prop, unit]).stdout.strip()


def main_pid():
    p = show("MainPID")
    return int(p) if p.isdigit() else 0


def seconds(span):
    total = 0.0
    for num, unit in re.findall(r"([\d.]+)\s*(ms|us|min|h|s)", span):
        total += float(num) * {"us": 1e-6, "ms": 1e-3, "s": 1, "min": 60, "h": 3600}[unit]
    return total


def meminfo():
    out = {}
    for line in read("/proc/meminfo").splitlines():
        k, v = line.split(":", 1)
        out[k] = int(v.split()[0]) * 1024
    return out


def cursor():
    r = run(["journalctl", "-o", "json", "-n", "1", "--no-pager"])
    lines = r.stdout.strip().splitlines()
    return json.loads(lines[-1])["__CURSOR"] if lines else None


def journal(after=None, message_id=None, unit="oomguard", match=()):
    """Entries after the cursor: of the unit (the daemon's and systemd's about
    it), with the MESSAGE_ID. Filtered here, not by journalctl: systemd 252's
    journalctl skips the first matching entry after --after-cursor when the
    cursor's own entry does not match (seen in this lab: the trigger entry,
    the first of oomguard's after the cursor, was missing from
    `journalctl -u oomguard --after-cursor=C` and from `MESSAGE_ID=... --after-cursor=C`)."""
    cmd = ["journalctl", "-o", "json", "--no-pager"] + list(match)
    if after:
        cmd.append(f"--after-cursor={after}")
    elif unit:
        cmd += ["-u", unit]
    out = []
    svc = unit + ".service" if unit and not unit.endswith(".service") else unit
    for line in run(cmd, timeout=60).stdout.splitlines():
        try:
            e = json.loads(line)
        except json.JSONDecodeError:
            continue
        if svc and svc not in (e.get("_SYSTEMD_UNIT"), e.get("UNIT"), e.get("OBJECT_SYSTEMD_UNIT")):
            continue
        if message_id is None or e.get("MESSAGE_ID") == message_id:
            out.append(e)
    return out


def msg(e):
    m = (e or {}).get("MESSAGE", "")
    return bytes(m).decode(errors="replace") if isinstance(m, list) else m


def dump_journal(after, pid=None):
    """Everything the daemon (or journald about it) logged since the cursor, for the report."""
    for e in journal(after, unit=None):
        if (pid and e.get("_PID") == str(pid)) or "oomguard" in str(e.get("_SYSTEMD_UNIT", "")) \
                or "oomguard" in msg(e) and e.get("SYSLOG_IDENTIFIER") != "oomguard-lab":
            note(f"journal {e.get('__MONOTONIC_TIMESTAMP')} {e.get('_SYSTEMD_UNIT', '-')} "
                 f"{e.get('SYSLOG_IDENTIFIER', '-')} {e.get('OOMGUARD_EVENT', '-')} id={e.get('MESSAGE_ID')} "
                 f"{e.get('_TRANSPORT', '-')}: {msg(e)[:160]!r}")


def wait_entry(after, event, timeout=15):
    def find():
        e = journal(after, MSG[event])
        return e[0] if e else None
    return wait_for(find, timeout)


class Kmsg:
    """The kernel's log records (seq, usec since boot, text) from /dev/kmsg."""

    def __init__(self):
        self.mark = self.last_seq()

    @staticmethod
    def records():
        out = []
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        try:
            while True:
                try:
                    rec = os.read(fd, 8192).decode(errors="replace")
                except BlockingIOError:
                    break
                except OSError:  # EPIPE: overwritten while reading; go on
                    continue
                head, _, text = rec.partition(";")
                f = head.split(",")
                if len(f) >= 3:
                    out.append((int(f[1]), int(f[2]), text.split("\n", 1)[0]))
        finally:
            os.close(fd)
        return out

    def last_seq(self):
        r = self.records()
        return r[-1][0] if r else -1

    def since(self, mark):
        return [r for r in self.records() if r[0] > mark]


def kmsg_clock_offset():
    """printk's clock (local_clock(), what /dev/kmsg stamps records with) minus
    CLOCK_MONOTONIC, in ns: they are not the same clock. The scheduler's debug
    header prints both at one instant (ktime, cpu_clk). Returns (offset, "")
    or (None, why)."""
    for path in ("/sys/kernel/debug/sched/debug", "/proc/sched_debug"):
        if path.startswith("/sys/kernel/debug") and not os.path.exists(path):
            run(["mount", "-t", "debugfs", "debugfs", "/sys/kernel/debug"])
        text = read(path)
        k = re.search(r"^ktime\s*:\s*(\d+)\.(\d+)", text, re.M)
        c = re.search(r"^cpu_clk\s*:\s*(\d+)\.(\d+)", text, re.M)
        if k and c:
            ns = lambda m: int(m.group(1)) * 1000000 + int(m.group(2).ljust(6, "0")[:6])  # noqa: E731
            return ns(c) - ns(k), ""
    return None, "no ktime/cpu_clk in the scheduler's debug header"


def killed(records):
    """(pid, task, usec) of every 'Killed process' line."""
    out = []
    for _, ts, text in records:
        m = re.search(r"Killed process (\d+) \(([^)]*)\)", text)
        if m:
            out.append((int(m.group(1)), m.group(2), ts))
    return out


def crossing_time(samples_path, log, threshold_kb):
    """When MemAvailable crossed the threshold, from the hog's own samples
    (one per MiB touched): the hog's logged crossing if it lived to see it,
    else extrapolated from its last samples above the threshold at the rate they
    show (the guard and the kernel can be faster than the hog's next sample)."""
    m = re.search(r"^crossing (\d+) (\d+)", read(log), re.M)
    if m:
        return int(m.group(1)), f"seen by the hog at MemAvailable {int(m.group(2)) >> 10} MiB"
    import struct
    try:
        raw = open(samples_path, "rb").read()
    except OSError as e:
        return None, str(e)
    pts = []
    for i in range(0, len(raw) - 15, 16):
        t, kb = struct.unpack_from("<qq", raw, i)
        if t == 0:
            break
        pts.append((t, kb))
    if len(pts) < 20:
        return None, f"only {len(pts)} samples"
    (t1, a1), (t0, a0) = pts[-1], pts[-20]
    if a1 < threshold_kb:
        return t1, f"the last sample is below already ({a1 >> 10} MiB)"
    rate = (a0 - a1) / ((t1 - t0) / 1e9)  # kB/s falling
    if rate <= 0:
        return None, "MemAvailable was not falling"
    t = t1 + int((a1 - threshold_kb) / rate * 1e9)
    return t, (f"extrapolated from the hog's last sample, MemAvailable {a1 >> 10} MiB falling at "
               f"{rate / 1024:.0f} MiB/s ({len(pts)} samples, +{(t - t1) / 1e6:.1f} ms)")


def config_text():
    return read("/etc/oomguard.toml")


def set_key(text, section, key, value):
    lines = text.splitlines()
    start = lines.index(f"[{section}]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    for i in range(start + 1, end):
        if re.match(rf"#?\s*{key}\s*=", lines[i]):
            lines[i] = f"{key} = {value}"
            return "\n".join(lines) + "\n"
    lines.insert(start + 1, f"{key} = {value}")
    return "\n".join(lines) + "\n"


def write_config(text):
    with open("/etc/oomguard.toml", "w") as f:
        f.write(text)
    os.chmod("/etc/oomguard.toml", 0o644)


# --- pods laid out as kubelet's systemd driver lays them out ---------------------

QOS_SLICE = {"BestEffort": "kubepods-besteffort", "Burstable": "kubepods-burstable", "Guaranteed": "kubepods"}


class Pod:
    """One pod with one container: a transient scope (the container) in the pod's
    slice, as kubelet with the systemd cgroup driver and containerd make them:
    kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid_>.slice/cri-containerd-<id>.scope,
    with /var/log/pods/<ns>_<pod>_<uid>/<container>/0.log and the
    /var/log/containers/<pod>_<ns>_<container>-<id>.log symlink."""

    def __init__(self, qos, namespace, name, container, adj):
        self.qos, self.namespace, self.name, self.container, self.adj = qos, namespace, name, container, adj
        self.uid = str(uuid.uuid4())
        self.cid = secrets.token_hex(32)
        self.slice = f"{QOS_SLICE[qos]}-pod{self.uid.replace('-', '_')}.slice"
        self.scope = f"cri-containerd-{self.cid}.scope"
        parts = ["kubepods.slice"]
        if qos != "Guaranteed":
            parts.append(f"{QOS_SLICE[qos]}.slice")
        parts += [self.slice, self.scope]
        self.cgroup = "/" + "/".join(parts)
        self.proc = None
        self.logdir = f"/var/log/pods/{namespace}_{name}_{self.uid}"
        self.link = f"/var/log/containers/{name}_{namespace}_{container}-{self.cid}.log"

    def path(self, f=""):
        return CG + self.cgroup + ("/" + f if f else "")

    def start(self, *hog_args, oom_group=False, wait_ready=True, props=()):
        os.makedirs(f"{self.logdir}/{self.container}", exist_ok=True)
        open(f"{self.logdir}/{self.container}/0.log", "a").close()
        os.makedirs("/var/log/containers", exist_ok=True)
        if not os.path.lexists(self.link):
            os.symlink(f"{self.logdir}/{self.container}/0.log", self.link)
        cmd = ["systemd-run", "--scope", "--quiet", f"--slice={self.slice}", f"--unit={self.scope}",
               "-p", "MemoryAccounting=yes"]
        for p in props:
            cmd += ["-p", p]
        cmd += [HOG, "--oom-score-adj", str(self.adj)] + [str(a) for a in hog_args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if not wait_for(lambda: os.path.exists(self.path("cgroup.procs")), 20, 0.02):
            raise RuntimeError(f"{self.scope}: no cgroup {self.cgroup} after 20 s: "
                               f"{self.proc.poll()} {self.proc.stderr.read() if self.proc.poll() is not None else ''}")
        line = self.proc.stdout.readline()
        if not line.startswith("started"):
            raise RuntimeError(f"{self.name}: hog did not start: {line!r} {self.proc.stderr.read()[-300:]}")
        if oom_group:
            # What runc sets on v2 for kubelet. systemd may write its own value
            # (OOMPolicy=, 0 for a scope) when it realizes the unit's cgroup a
            # moment later: set it again until it stays.
            resets = 0
            for _ in range(10):
                write(self.path("memory.oom.group"), "1")
                time.sleep(0.1)
                if read(self.path("memory.oom.group")).strip() == "1":
                    break
                resets += 1
            self.oom_group_resets = resets
        if wait_ready:
            line = self.proc.stdout.readline()
            if not line.startswith("ready"):
                raise RuntimeError(f"{self.name}: hog did not get ready: {line!r} {self.proc.stderr.read()[-300:]}")
        return self

    def pids(self):
        return [int(p) for p in read(self.path("cgroup.procs")).split()]

    def stat(self, key):
        for line in read(self.path("memory.stat")).splitlines():
            k, v = line.split()
            if k == key:
                return int(v)
        return None

    def current(self):
        v = read(self.path("memory.current")).strip()
        return int(v) if v.isdigit() else 0

    def stop(self):
        run(["systemctl", "stop", self.scope], timeout=30)
        if self.proc:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.logdir, ignore_errors=True)
        if os.path.lexists(self.link):
            os.unlink(self.link)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = read(f"/proc/{pid}/stat")
    return bool(stat) and stat[stat.rindex(")") + 2] != "Z"


def proc_field(pid, key):
    m = re.search(rf"^{key}:\s+(\S+)", read(f"/proc/{pid}/status"), re.M)
    return m.group(1) if m else None


def majflt(pid):
    s = read(f"/proc/{pid}/stat")
    return int(s[s.rindex(")") + 2:].split()[9]) if s else -1
