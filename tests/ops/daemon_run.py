"""A real oomguard on a fake node: proc root with a meminfo rewritten in place,
a v2 cgroup tree with one kubelet pod, a trigger file of the test's own, pod
logs, a kmsg file. Shared by the ops tests."""
import os
import signal
import subprocess
import tempfile
import time

BIN = os.environ.get("OOMGUARD_BIN", "build/src/oomguard")
MIB = 1 << 20
UID = "0d3c2a7e-5b1f-4c8e-9a6d-2f4e8b7c1a90"
CID = "a" * 64


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


class FakeNode:
    def __init__(self, extra_config=""):
        self.tmp = tempfile.TemporaryDirectory(prefix="oomguard-ops-")
        d = self.dir = self.tmp.name
        self.meminfo = os.path.join(d, "proc", "meminfo")
        self.set_available(2048 * MIB)
        cg = os.path.join(d, "cgroup")
        write(os.path.join(cg, "cgroup.controllers"), "cpu io memory pids\n")
        kp = os.path.join(cg, "kubepods.slice")
        pod = os.path.join(kp, "kubepods-besteffort.slice",
                           "kubepods-besteffort-pod" + UID.replace("-", "_") + ".slice")
        ctr = os.path.join(pod, "cri-containerd-" + CID + ".scope")
        for p, usage in ((kp, 2300 * MIB), (os.path.dirname(pod), 2200 * MIB), (pod, 2200 * MIB),
                         (ctr, 2150 * MIB)):
            write(os.path.join(p, "memory.current"), "%d\n" % usage)
            write(os.path.join(p, "memory.max"), "max\n")
            write(os.path.join(p, "memory.oom.group"), "1\n")
            write(os.path.join(p, "memory.stat"),
                  "anon %d\nfile 0\ninactive_file 0\nactive_file 0\n" % usage)
            write(os.path.join(p, "cgroup.procs"), "")
        logs = os.path.join(d, "pods")
        os.makedirs(os.path.join(logs, "shop_web-1_" + UID, "web"))
        self.trigger = os.path.join(d, "trigger")
        write(self.trigger, "")
        write(os.path.join(d, "kmsg"), "")
        self.config = os.path.join(d, "oomguard.toml")
        write(self.config, f'''[memory]
min_available = "350MiB"
recover_available = "700MiB"
[action]
sysrq_trigger = "{self.trigger}"
repeat_after = "10s"
[poll]
psi = false
[paths]
proc = "{d}/proc"
cgroup = "{cg}"
kmsg = "{d}/kmsg"
lock = ""
[kubernetes]
pod_logs_dir = "{logs}"
''' + extra_config)
        self.log_path = os.path.join(d, "stderr.log")
        self.proc = None

    def set_available(self, avail):
        # Same length every time: the daemon preads the open file.
        text = ("MemTotal:       %10d kB\nMemFree:        %10d kB\nMemAvailable:   %10d kB\n"
                % (4096 * 1024, avail // 1024, avail // 1024))
        if os.path.exists(self.meminfo):
            with open(self.meminfo, "r+") as f:
                f.write(text)
        else:
            write(self.meminfo, text)

    def start(self, *args):
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [BIN, "--config", self.config, "--no-mlock", "--no-dbus", "--allow-insecure-config",
             *args], stdout=subprocess.DEVNULL, stderr=self.log, stdin=subprocess.DEVNULL)

    def output(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_for(self, text, timeout=10.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text in self.output():
                return True
            if self.proc.poll() is not None:
                return text in self.output()
            time.sleep(0.05)
        return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()

    def close(self):
        self.stop()
        self.tmp.cleanup()
