#!/usr/bin/env python3
"""The node lab (issue 12): oomguard on a real node, in a VM.

qemu boots Debian 12's own kernel with systemd as PID 1 on pure cgroup v2 (the
memory controller, PSI, a /proc/sysrq-trigger that belongs to the VM alone).
A boot service in the image (tests/node/make-image.sh) mounts a second disk
the host makes fresh for every run (the .deb under test, the guest driver,
the hog) and runs tests/node/guest/driver.py, which installs the .deb with
apt and runs the scenarios; the results come back over the VM's second serial
port, one line each, and this script relays and asserts on them.

One boot serves all scenarios. The cached image is never written: the root
disk is a qemu snapshot (the writes go to a temporary file).

Exit status: 0 all passed, 1 a FAIL (or no "LAB done": the driver died, the
VM hung or timed out), 77 skipped (not root, no qemu, qemu cannot run here).

Environment:
  OOMGUARD_NODE_ACCEL=tcg|kvm   skip the KVM probe (default: probe, else TCG)
  OOMGUARD_NODE_TIMEOUT=S       bound on the VM's run (default 1500 s: scenarios 0-11 take ~17 min under TCG)
  OOMGUARD_NODE_DEB=PATH        test this .deb instead of building one
  OOMGUARD_NODE_ONLY=1,2        run only these scenarios (installation always)
  OOMGUARD_NODE_KEEP=1          keep the run's directory (console log, results) until the next run
  OOMGUARD_TEST_CACHE=DIR       cache (default /var/cache/oomguard-tests)

The runtime scenarios (issue 13, containerd over the CRI) also need protoc
(protobuf-compiler: cri_api_pb2.py is generated here for the VM's
python3-protobuf 3.21) and the static hog and pause for the lab's images.

Usage: node_lab.py SOURCE_ROOT BUILD_ROOT HOG_BINARY [HOG_STATIC PAUSE_STATIC]
"""
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SRC, BUILD, HOG = sys.argv[1], sys.argv[2], sys.argv[3]
HOG_STATIC, PAUSE = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else (None, None)
HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("OOMGUARD_TEST_CACHE", "/var/cache/oomguard-tests")
TIMEOUT = int(os.environ.get("OOMGUARD_NODE_TIMEOUT", "1500"))

counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}


def say(line):
    print(line, flush=True)


def report(kind, what, detail=""):
    counts[kind] += 1
    say(f"{kind}: {what}" + (f" ({detail})" if detail else ""))


def host(cmd, timeout=600, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def qemu_cmd(image, data, accel, console, results, mem="2048", smp="2", extra_append=""):
    return ["qemu-system-x86_64", "-accel", accel, "-m", mem, "-smp", smp,
            "-kernel", os.path.join(image, "vmlinuz"), "-initrd", os.path.join(image, "initrd.img"),
            # snapshot=on: the cached image is only read; writes go to a temp file.
            "-drive", f"file={os.path.join(image, 'node.img')},if=virtio,format=raw,snapshot=on",
            *(["-drive", f"file={data},if=virtio,format=raw,readonly=on"] if data else []),
            "-append", "root=/dev/vda rw console=ttyS0 quiet panic=-1 printk.devkmsg=on oomguard.lab=1 " + extra_append,
            "-display", "none", "-monitor", "none", "-no-reboot", "-nic", "none",
            "-serial", f"file:{console}", *(["-serial", f"file:{results}"] if results else [])]


def die_with_parent():
    # qemu must not outlive this script, even when it is SIGKILLed (meson's timeout).
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def start(cmd, scratch, name="qemu"):
    # TMPDIR: where qemu puts the snapshot's overlay (unlinked at once).
    out = open(os.path.join(scratch, name + ".out"), "w+")
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                         start_new_session=True, env=dict(os.environ, TMPDIR=scratch),
                         preexec_fn=die_with_parent)
    p.out = out
    return p


def output(p):
    p.out.seek(0)
    return p.out.read()


def stop(p):
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pass


def probe_kvm(image, scratch):
    """KVM only if a guest really runs under it: on some hosts /dev/kvm opens
    but the guest never gets past the BIOS. Boots the kernel to its panic
    (no root) and looks for the kernel's own lines within a short bound."""
    if not os.path.exists("/dev/kvm"):
        return False, "no /dev/kvm"
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError as e:
        return False, f"/dev/kvm: {e.strerror}"
    log = os.path.join(scratch, "kvm-probe.log")
    cmd = qemu_cmd(image, None, "kvm", log, None, mem="256", smp="1",
                   extra_append="rdinit=/nonexistent root=/dev/nonexistent")
    p = start(cmd, scratch, "kvm-probe")
    t0 = time.monotonic()
    ok = False
    while time.monotonic() - t0 < 6 and p.poll() is None:
        if re.search(r"Kernel panic|Run /|Freeing unused kernel", open(log, errors="replace").read()
                     if os.path.exists(log) else ""):
            ok = True
            break
        time.sleep(0.2)
    took = time.monotonic() - t0
    stop(p)
    out = output(p)
    if ok:
        return True, f"the kernel ran under KVM in {took:.1f} s"
    return False, f"no kernel output under KVM within {took:.0f} s {out.strip()[-200:]}".strip()


def probe_qemu(image, scratch):
    """None when qemu can run a TCG guest at all, else the reason."""
    log = os.path.join(scratch, "tcg-probe.log")
    p = start(qemu_cmd(image, None, "tcg", log, None, mem="256", smp="1",
                       extra_append="rdinit=/nonexistent root=/dev/nonexistent"), scratch, "tcg-probe")
    try:
        p.wait(timeout=3)
    except subprocess.TimeoutExpired:
        stop(p)
        return None  # still running after 3 s: it runs
    out = output(p).strip()
    booted = os.path.exists(log) and "Linux version" in open(log, errors="replace").read()
    return None if booted else f"qemu-system-x86_64 exited with {p.returncode}: {out[-300:]}"


def clean_stale_runs():
    """Removes what runs that were killed outright left in /var/tmp (their qemu
    died with them: PR_SET_PDEATHSIG). A run in progress has a live owner.pid."""
    for d in glob.glob("/var/tmp/oomguard-node.*"):
        try:
            with open(os.path.join(d, "owner.pid")) as f:
                owner = int(f.read())
        except (OSError, ValueError):
            owner = None
        if owner and os.path.exists(f"/proc/{owner}"):
            continue
        if owner is None and time.time() - os.path.getmtime(d) < 600:
            continue  # just created, owner.pid not written yet
        shutil.rmtree(d, ignore_errors=True)


def prepare_runtime(lab):
    """What the runtime scenarios need on the lab disk besides the guest
    modules (the CRI client cri.py is one of them): its generated messages, the
    static hog and pause, the Containerfile and its rootfs script, and the
    DaemonSet translated into CRI terms. Missing parts are named in
    lab/runtime-missing; the guest reports those scenarios as FAIL."""
    import json
    import uuid
    missing = []
    if shutil.which("protoc"):
        r = host(["protoc", "-I", os.path.join(HERE, "guest"), "--python_out", lab,
                  os.path.join(HERE, "guest", "cri_api.proto")])
        if r.returncode != 0:
            missing.append(f"protoc failed: {r.stderr.strip()[-300:]}")
    else:
        missing.append("protoc is not installed (protobuf-compiler: tools/deps.sh --test)")
    for src, name in ((HOG_STATIC, "oomguard-node-hog-static"), (PAUSE, "oomguard-node-pause")):
        if src and os.path.exists(src):
            shutil.copy(src, os.path.join(lab, name))
        else:
            missing.append(f"{name} was not built")
    os.makedirs(os.path.join(lab, "container"))
    for f in ("Containerfile", "make-rootfs.sh"):
        shutil.copy(os.path.join(SRC, "packaging", "container", f), os.path.join(lab, "container", f))
    r = host([sys.executable, os.path.join(HERE, "manifest_cri.py"), "--translate", SRC, str(uuid.uuid4()),
              str(2048 << 20)])
    if r.returncode == 0:
        with open(os.path.join(lab, "daemonset-cri.json"), "w") as f:
            f.write(r.stdout)
    else:
        missing.append(f"manifest_cri.py --translate failed: {r.stderr.strip()[-300:]}")
    with open(os.path.join(lab, "runtime-missing"), "w") as f:
        f.write(json.dumps(missing))


class Interrupted(Exception):
    pass


def on_signal(signum, _frame):
    raise Interrupted(f"signal {signum}")


def main():
    t_start = time.monotonic()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if os.geteuid() != 0:
        say("SKIP: the node lab needs root (debootstrap, the image cache; CI runs as root)")
        return 77
    if shutil.which("qemu-system-x86_64") is None:
        say("SKIP: qemu-system-x86_64 is not installed (tools/deps.sh --test installs qemu-system-x86)")
        return 77
    missing = [t for t in ("debootstrap", "mke2fs", "dpkg-buildpackage") if shutil.which(t) is None]
    if missing:
        report("FAIL", f"missing tools {missing}: run tools/deps.sh --test")
        return 1

    # The .deb under test: the one the package test and the nspawn e2e build
    # (tests/system/build-deb.sh, cached per source hash).
    deb = os.environ.get("OOMGUARD_NODE_DEB")
    if not deb:
        t = time.monotonic()
        r = host([os.path.join(SRC, "tests", "system", "build-deb.sh"), SRC, os.path.join(BUILD, "pkg-cache")],
                 timeout=1500)
        sys.stderr.write(r.stderr)
        if r.returncode != 0:
            report("FAIL", "built the .deb with dpkg-buildpackage", r.stderr[-1500:])
            return 1
        debs = sorted(glob.glob(os.path.join(r.stdout.strip(), "oomguard_*.deb")))
        if not debs:
            report("FAIL", "built the .deb", f"no oomguard_*.deb in {r.stdout.strip()}")
            return 1
        deb = debs[0]
        say(f"  .. .deb: {deb} ({time.monotonic() - t:.0f} s, cached per source hash)")

    t = time.monotonic()
    r = host([os.path.join(HERE, "make-image.sh"), CACHE], timeout=1200)
    sys.stderr.write(r.stderr)
    if r.returncode != 0:
        report("FAIL", "the node image (debootstrap + mke2fs, cached)", r.stderr[-1500:])
        return 1
    image = r.stdout.strip().splitlines()[-1]
    built = "built" in r.stderr
    say(f"  .. image: {image} ({'built' if built else 'cached'}, {time.monotonic() - t:.0f} s); "
        f"kernel {open(os.path.join(image, 'kernel-version')).read().strip()}")
    t_image = time.monotonic() - t

    clean_stale_runs()
    scratch = tempfile.mkdtemp(prefix="oomguard-node.", dir="/var/tmp")
    with open(os.path.join(scratch, "owner.pid"), "w") as f:
        f.write(str(os.getpid()))
    qemu = None
    lab_done = False
    try:
        # The lab disk: fresh every run, so the cached image stays untouched.
        lab = os.path.join(scratch, "lab")
        os.makedirs(lab)
        shutil.copy(deb, lab)
        # Every guest module: driver.py and the scenario and helper modules it
        # imports (the VM runs them from this disk), cri.py with them.
        for py in sorted(glob.glob(os.path.join(HERE, "guest", "*.py"))):
            shutil.copy(py, lab)
        shutil.copy(os.path.join(SRC, "README.md"), lab)
        shutil.copy(HOG, os.path.join(lab, "oomguard-node-hog"))
        prepare_runtime(lab)
        with open(os.path.join(lab, "env"), "w") as f:
            f.write(f"OOMGUARD_NODE_ONLY={os.environ.get('OOMGUARD_NODE_ONLY', '')}\n")
        data = os.path.join(scratch, "lab.img")
        r = host(["mke2fs", "-q", "-t", "ext4", "-L", "lab", "-d", lab, "-F", data, "96M"])
        if r.returncode != 0:
            report("FAIL", "made the lab disk with mke2fs -d", r.stderr[-500:])
            return 1

        accel = os.environ.get("OOMGUARD_NODE_ACCEL")
        if not accel:
            reason = probe_qemu(image, scratch)
            if reason:
                say(f"SKIP: qemu cannot run a guest here: {reason}")
                return 77
            use_kvm, why = probe_kvm(image, scratch)
            accel = "kvm" if use_kvm else "tcg"
            say(f"  .. accelerator: {accel} (KVM probe: {why})")
        console = os.path.join(scratch, "console.log")
        results = os.path.join(scratch, "results.log")
        open(results, "w").close()
        t_boot = time.monotonic()
        qemu = start(qemu_cmd(image, data, accel, console, results), scratch)
        say(f"  .. booting: qemu -accel {accel} -m 2048 -smp 2 (bound {TIMEOUT} s); console {console}")
        pos = 0
        buf = ""
        deadline = t_boot + TIMEOUT
        timed_out = False
        while True:
            with open(results, "rb") as f:
                f.seek(pos)
                chunk = f.read()
            pos += len(chunk)
            buf += chunk.decode(errors="replace").replace("\r", "")
            *lines, buf = buf.split("\n")
            for line in lines:
                line = line.strip()
                if not line:
                    continue
                m = re.match(r"(PASS|FAIL|SKIP): ", line)
                if m:
                    counts[m.group(1)] += 1
                if line.startswith("LAB boot"):
                    say(f"  .. driver started {time.monotonic() - t_boot:.1f} s after qemu (guest uptime "
                        f"{line.split()[-1]} s)")
                    say(f"FIG: boot_to_driver_host_s={time.monotonic() - t_boot:.1f}")
                    continue
                if line.startswith("LAB done"):
                    lab_done = True
                say(line)
            if qemu.poll() is not None:
                if not chunk:
                    break
                continue
            if time.monotonic() > deadline:
                timed_out = True
                break
            time.sleep(0.2)
        if timed_out:
            report("FAIL", f"the VM did not power off within {TIMEOUT} s: killed qemu")
        elif qemu.returncode != 0:
            report("FAIL", f"qemu exited with {qemu.returncode}", output(qemu)[-500:])
        if not lab_done:
            report("FAIL", "the driver did not finish every scenario ('LAB done' missing)")
        say(f"FIG: vm_wall_s={time.monotonic() - t_boot:.1f}")
        if counts["FAIL"]:
            log = open(console, errors="replace").read() if os.path.exists(console) else ""
            say("  .. console (last lines):\n" + "\n".join("     " + l for l in log.replace("\r", "").splitlines()[-40:]))
    except Interrupted as e:
        report("FAIL", "interrupted", str(e))
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if qemu:
            stop(qemu)
        if os.environ.get("OOMGUARD_NODE_KEEP") == "1":
            say(f"  .. kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    say(f"FIG: lab_wall_s={time.monotonic() - t_start:.0f} (image {'built' if built else 'cached'} "
        f"{t_image:.0f} s)")
    say(f"node: {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
