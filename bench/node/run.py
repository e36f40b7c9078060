#!/usr/bin/env python3
"""The node benchmark (issue 17, part 2): six guards x six scenarios on a real
Debian 12 node in a qemu VM (the node lab's image plus every guard, see
make-bench-image.sh). A benchmark, not a test: run by hand (bench/node/run.sh).

Disks: vda the image (snapshot=on: never written), vdb the bench disk (this
driver, the lab's lab.py for its helpers, benchtool, the hog), vdc the data
disk (ext4 with a 700 MiB file; throttled like a cloud disk, cache=none), vdd
the output disk (the guest writes one directory per episode and syncs; read
back here with debugfs, no loop mount).

Environment:
  OOMGUARD_NODE_DEB=PATH     the oomguard .deb (default: tests/system/build-deb.sh builds it)
  BENCH_SCENARIOS=a,b        only these (ramp,thrash,control,multi,storm,leak)
  BENCH_GUARDS=a,b           only these (none,script,earlyoom,oomd,nohang,oomguard)
  BENCH_BUDGET_S=S           the guest skips episodes that would end past S s (default 3300)
  BENCH_TIMEOUT_S=S          bound on the VM (default budget + 600)
  BENCH_IOPS=3000 BENCH_BPS=125000000   the data disk's throttle
  OOMGUARD_TEST_CACHE=DIR    image cache (default /var/cache/oomguard-tests)
Usage: run.py OUT_RAW_DIR
"""
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
CACHE = os.environ.get("OOMGUARD_TEST_CACHE", "/var/cache/oomguard-tests")


def say(s):
    print(s, flush=True)


def sh(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode:
        sys.exit(f"run.py: {' '.join(cmd)} failed: {r.stderr[-2000:]}")
    return r.stdout


def die_with_parent():
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)


def on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    out_raw = os.path.abspath(sys.argv[1])
    budget = int(os.environ.get("BENCH_BUDGET_S", "3300"))
    timeout = int(os.environ.get("BENCH_TIMEOUT_S", str(budget + 600)))
    deb = os.environ.get("OOMGUARD_NODE_DEB")
    if not deb:
        d = sh([f"{SRC}/tests/system/build-deb.sh", SRC, "/var/tmp/oomguard-bench-pkg"], timeout=3000).strip()
        deb = sorted(glob.glob(f"{d}/oomguard_*.deb"))[0]
    say(f"  .. deb {deb}")
    image = sh([f"{HERE}/make-bench-image.sh", deb, CACHE], timeout=1800).strip().splitlines()[-1]
    say(f"  .. image {image}: " + open(f"{image}/versions").read().replace("\n", "; "))
    scratch = tempfile.mkdtemp(prefix="oomguard-nodebench.", dir="/var/tmp")
    qemu = None
    try:
        lab = f"{scratch}/lab"
        os.makedirs(lab)
        for tool, src in (("benchtool", f"{HERE}/benchtool.cpp"), ("oomguard-node-hog", f"{SRC}/tests/node/hog.cpp")):
            sh(["g++", "-std=c++20", "-O2", "-static", "-pthread", "-o", f"{lab}/{tool}", src])
        shutil.copy(f"{HERE}/guest/bench.py", lab)
        shutil.copy(f"{SRC}/tests/node/guest/lab.py", lab)  # its helpers, imported unchanged
        shutil.copy(f"{image}/versions", lab)
        with open(f"{lab}/env", "w") as f:
            for k in ("BENCH_SCENARIOS", "BENCH_GUARDS"):
                f.write(f"{k}={os.environ.get(k, '')}\n")
            f.write(f"BENCH_BUDGET_S={budget}\n")
        sh(["mke2fs", "-q", "-t", "ext4", "-L", "bench", "-d", lab, "-F", f"{scratch}/lab.img", "64M"])
        data = f"{scratch}/data"
        os.makedirs(data)
        with open(f"{data}/ws.bin", "wb") as f:
            for _ in range(700):
                f.write(os.urandom(1 << 20))
        sh(["mke2fs", "-q", "-t", "ext4", "-L", "data", "-d", data, "-F", f"{scratch}/data.img", "3G"])
        shutil.rmtree(data)
        sh(["mke2fs", "-q", "-t", "ext4", "-L", "out", "-F", f"{scratch}/out.img", "512M"])
        iops = os.environ.get("BENCH_IOPS", "3000")
        bps = os.environ.get("BENCH_BPS", "125000000")
        console, results = f"{scratch}/console.log", f"{scratch}/results.log"
        open(results, "w").close()
        cmd = ["qemu-system-x86_64", "-accel", "tcg", "-m", "2048", "-smp", "2",
               "-kernel", f"{image}/vmlinuz", "-initrd", f"{image}/initrd.img",
               "-drive", f"file={image}/node.img,if=virtio,format=raw,snapshot=on",
               "-drive", f"file={scratch}/lab.img,if=virtio,format=raw,readonly=on",
               "-drive", f"file={scratch}/data.img,if=virtio,format=raw,cache=none,aio=threads,"
                         f"throttling.iops-total={iops},throttling.bps-total={bps}",
               "-drive", f"file={scratch}/out.img,if=virtio,format=raw",
               "-append", "root=/dev/vda rw console=ttyS0 quiet panic=-1 printk.devkmsg=on oomguard.lab=1",
               "-display", "none", "-monitor", "none", "-no-reboot", "-nic", "none",
               "-serial", f"file:{console}", "-serial", f"file:{results}"]
        t0 = time.monotonic()
        qemu = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=open(f"{scratch}/qemu.out", "w"),
                                stderr=subprocess.STDOUT, start_new_session=True,
                                env=dict(os.environ, TMPDIR=scratch), preexec_fn=die_with_parent)
        say(f"  .. qemu -accel tcg -m 2048 -smp 2, data disk {iops} IOPS / {bps} B/s cache=none; "
            f"bound {timeout} s; scratch {scratch}")
        pos, buf = 0, ""
        while True:
            with open(results, "rb") as f:
                f.seek(pos)
                chunk = f.read()
            pos += len(chunk)
            buf += chunk.decode(errors="replace").replace("\r", "")
            *lines, buf = buf.split("\n")
            for line in lines:
                if line.startswith(("BENCH", "NOTE")):
                    say(f"[{time.monotonic() - t0:6.0f} s] {line.strip()}")
            if qemu.poll() is not None and not chunk:
                break
            if time.monotonic() - t0 > timeout:
                say(f"  .. VM still running after {timeout} s: killed")
                os.killpg(qemu.pid, signal.SIGKILL)
                qemu.wait()
                break
            time.sleep(0.5)
        say(f"  .. VM wall {time.monotonic() - t0:.0f} s")
        if os.path.exists(out_raw):
            shutil.rmtree(out_raw)
        os.makedirs(out_raw)
        subprocess.run(["debugfs", "-c", "-R", f"rdump / {out_raw}", f"{scratch}/out.img"], capture_output=True)
        shutil.copy(console, f"{out_raw}/console.log")
        shutil.copy(results, f"{out_raw}/results.log")
        say(f"  .. raw records in {out_raw}: {len(glob.glob(out_raw + '/*/meta.json'))} episodes")
    finally:
        if qemu and qemu.poll() is None:
            os.killpg(qemu.pid, signal.SIGKILL)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
