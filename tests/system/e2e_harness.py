"""The harness of systemd_e2e.py: PASS/FAIL/SKIP reporting, the booted
systemd-nspawn container (overlay, boot, nsenter, teardown, stale runs) and
helpers on it (systemctl show, the journal, waiting, the config file)."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

results = {"PASS": 0, "FAIL": 0, "SKIP": 0}


def report(kind, what, detail=""):
    results[kind] += 1
    line = f"{kind}: {what}"
    if detail:
        line += f" ({detail})"
    print(line, flush=True)


def check(ok, what, detail=""):
    report("PASS" if ok else "FAIL", what, detail)
    return ok


def note(msg):
    print(f"  .. {msg}", flush=True)


class Interrupted(Exception):
    pass


def on_signal(signum, _frame):
    raise Interrupted(f"signal {signum}")


def host(cmd, timeout=600, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


class Container:
    """A booted systemd-nspawn container on an overlay of the cached rootfs."""

    def __init__(self, rootfs):
        self.lower = rootfs
        self.scratch = tempfile.mkdtemp(prefix="oomguard-e2e.", dir="/var/tmp")
        self.root = os.path.join(self.scratch, "root")
        self.overlay = False
        self.nspawn = None
        self.pid1 = None

    def prepare(self):
        upper, work = (os.path.join(self.scratch, d) for d in ("upper", "work"))
        for d in (upper, work, self.root):
            os.makedirs(d)
        r = host(["mount", "-t", "overlay", "overlay", "-o",
                  f"lowerdir={self.lower},upperdir={upper},workdir={work}", self.root])
        if r.returncode == 0:
            self.overlay = True
        else:
            note(f"overlay mount failed ({r.stderr.strip()}), copying the rootfs instead")
            host(["cp", "-a", self.lower + "/.", self.root])

    def path(self, p):
        return os.path.join(self.root, p.lstrip("/"))

    def boot(self, console_log):
        self.console = open(console_log, "w")
        name = f"oomguard-e2e-{os.getpid()}"
        # --keep-unit --register=no: no systemd on the host to register with.
        # CAP_IPC_LOCK: lets services mlockall() (nspawn's seccomp filter blocks
        # it otherwise); the host here cannot grant CAP_SYS_RESOURCE, so
        # LimitMEMLOCK=infinity cannot be applied in the container.
        with open(os.path.join(self.scratch, "owner.pid"), "w") as f:
            f.write(str(os.getpid()))
        self.nspawn = subprocess.Popen(
            ["systemd-nspawn", "--register=no", "--keep-unit", "--quiet",
             "--capability=CAP_IPC_LOCK", "--console=read-only",
             f"--machine={name}", "-D", self.root, "--boot"],
            stdin=subprocess.DEVNULL, stdout=self.console, stderr=subprocess.STDOUT,
            start_new_session=True)
        with open(os.path.join(self.scratch, "nspawn.pid"), "w") as f:
            f.write(str(self.nspawn.pid))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.pid1 is None:
            if self.nspawn.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited with {self.nspawn.returncode}; see {console_log}")
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        stat = f.read()
                except OSError:
                    continue
                comm = stat[stat.index("(") + 1:stat.rindex(")")]
                ppid = int(stat[stat.rindex(")") + 2:].split()[1])
                if ppid == self.nspawn.pid and comm == "systemd":
                    self.pid1 = int(pid)
            time.sleep(0.1)
        if self.pid1 is None:
            raise RuntimeError("no systemd child of systemd-nspawn within 30 s")
        # systemctl cannot connect until the manager has set up its socket:
        # retry until it answers with a state, then wait for the boot to end.
        deadline = time.monotonic() + 120
        state = ""
        while time.monotonic() < deadline:
            r = self.run(["systemctl", "is-system-running", "--wait"],
                         timeout=max(1, deadline - time.monotonic()))
            state = r.stdout.strip()
            # "offline": the manager does not answer on its socket yet (a
            # loaded machine; it failed a boot after 2.5 s once). Not an end.
            if state and state not in ("initializing", "starting", "offline"):
                break
            time.sleep(0.2)
        return state

    def run(self, cmd, input=None, timeout=120, env=None):
        e = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "SYSTEMD_PAGER=",
             "SYSTEMD_COLORS=0", "DEBIAN_FRONTEND=noninteractive", "TERM=dumb"]
        e += [f"{k}={v}" for k, v in (env or {}).items()]
        # A session of its own: a signal to "the process group" inside can
        # never reach this script.
        return subprocess.run(["nsenter", "-t", str(self.pid1), "-a", "env", "-i"] + e + cmd,
                              input=input, capture_output=True, text=True, timeout=timeout,
                              start_new_session=True)

    def teardown(self):
        if self.nspawn and self.nspawn.poll() is None:
            # SIGTERM: nspawn asks the container's systemd to power off.
            self.nspawn.send_signal(signal.SIGTERM)
            try:
                self.nspawn.wait(timeout=20)
            except subprocess.TimeoutExpired:
                note("container did not power off in 20 s, killing it")
                if self.pid1:
                    try:
                        os.kill(self.pid1, signal.SIGKILL)  # ends its whole PID namespace
                    except ProcessLookupError:
                        pass
                self.nspawn.kill()
                self.nspawn.wait(timeout=20)
        if self.overlay:
            for _ in range(10):
                if host(["umount", self.root]).returncode == 0:
                    break
                time.sleep(0.5)
            else:
                host(["umount", "-l", self.root])
        shutil.rmtree(self.scratch, ignore_errors=True)


def clean_stale_runs():
    """Tears down what an earlier run left behind when it was killed outright
    (SIGKILL after a timeout): its container (the nspawn it recorded, if that
    process still runs this scratch dir), its overlay mount, its scratch dir."""
    for name in os.listdir("/var/tmp"):
        if not name.startswith("oomguard-e2e."):
            continue
        d = os.path.join("/var/tmp", name)

        def pid_in(fname):
            try:
                with open(os.path.join(d, fname)) as f:
                    return int(f.read().strip())
            except (OSError, ValueError):
                return None

        owner = pid_in("owner.pid")
        if owner and os.path.exists(f"/proc/{owner}"):
            continue  # a run in progress
        nspawn = pid_in("nspawn.pid")
        if nspawn:
            try:
                with open(f"/proc/{nspawn}/cmdline", "rb") as f:
                    ours = d.encode() in f.read()
            except OSError:
                ours = False
            if ours:
                note(f"stopping the container left by an earlier run ({d})")
                os.kill(nspawn, signal.SIGTERM)
                for _ in range(40):
                    if not os.path.exists(f"/proc/{nspawn}"):
                        break
                    time.sleep(0.5)
        root = os.path.join(d, "root")
        if os.path.ismount(root):
            if host(["umount", root]).returncode != 0:
                host(["umount", "-l", root])
        shutil.rmtree(d, ignore_errors=True)


# --- helpers on the container ----------------------------------------------------

def show(c, prop):
    return c.run(["systemctl", "show", "-P", prop, "oomguard"]).stdout.strip()


def cursor(c):
    r = c.run(["journalctl", "-o", "json", "-n", "1", "--no-pager"])
    lines = r.stdout.strip().splitlines()
    return json.loads(lines[-1])["__CURSOR"] if lines else None


def journal(c, after=None, message_id=None):
    """Entries of oomguard.service (the daemon's and systemd's about it) after
    the cursor. Filtered here: journalctl ORs -u's matches with extra ones."""
    cmd = ["journalctl", "-u", "oomguard", "-o", "json", "--no-pager"]
    if after:
        cmd.append(f"--after-cursor={after}")
    r = c.run(cmd)
    out = []
    for line in r.stdout.splitlines():
        try:
            e = json.loads(line)
        except json.JSONDecodeError:
            continue
        if message_id is None or e.get("MESSAGE_ID") == message_id:
            out.append(e)
    return out


def wait_for(pred, timeout, interval=0.2):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def wait_entry(c, after, message_id, timeout=15):
    def find():
        e = journal(c, after, message_id)
        return e[0] if e else None
    return wait_for(find, timeout)


def write_config(c, text):
    r = c.run(["sh", "-c", "cat > /etc/oomguard.toml"], input=text)
    return r.returncode == 0


def set_key(text, section, key, value):
    """Sets key = value in [section] of the shipped TOML (which has every section)."""
    lines = text.splitlines()
    start = lines.index(f"[{section}]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    for i in range(start + 1, end):
        if re.match(rf"#?\s*{key}\s*=", lines[i]):
            lines[i] = f"{key} = {value}"
            return "\n".join(lines) + "\n"
    lines.insert(start + 1, f"{key} = {value}")
    return "\n".join(lines) + "\n"


def seconds(span):
    """systemd time span ('10s', '1min 30s', '500ms') -> seconds."""
    total = 0.0
    for num, unit in re.findall(r"([\d.]+)\s*(ms|us|min|h|s)", span):
        total += float(num) * {"us": 1e-6, "ms": 1e-3, "s": 1, "min": 60, "h": 3600}[unit]
    return total


def mem_available_mib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")
