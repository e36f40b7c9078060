#!/usr/bin/env python3
"""Soak: real memory-pressure episodes against the real oomguard, for a bounded time.

Not a test and not in CI: a command to run by hand (as root, ~10 minutes):

    bench/soak.py                      # 10 minutes, build/src/oomguard
    bench/soak.py --minutes 2 --binary build-asan/src/oomguard

Each episode:
  1. reads MemAvailable (A) and reloads the daemon (SIGHUP) with
     min_available = A - 1 GiB and recover_available = A - 512 MiB;
  2. starts a child of its own that allocates and touches real memory, 8 MiB at
     a time, up to 1.5 GiB, noting when MemAvailable fell below the threshold;
  3. the daemon (real /proc, PSI on, mlockall) writes 'f' to a FIFO this script
     reads -- never /proc/sysrq-trigger -- and the script then signals the child,
     which reports how far it got and exits, freeing its memory;
  4. the script waits for the daemon's "recovered" entry and samples the
     daemon's VmRSS, VmLck and open fds from /proc/<pid>.
Every episode must be acted on (an 'f' while the child holds its memory),
and RSS, fds and locked memory must stay flat. The report says so, and the exit
status is 0 only then. Only processes this script started are ever signalled.
"""
import argparse
import os
import select
import signal
import stat
import statistics
import subprocess
import sys
import tempfile
import time

MiB = 1 << 20
GiB = 1 << 30
CHUNK = 8 * MiB


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "VmLck"):
                out[key] = int(rest.split()[0]) * 1024
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


def allocator(threshold, cap, report_fd):
    """Child: allocate until told to stop (SIGUSR1) or the cap; report and exit."""
    stop = False

    def on_usr1(_sig, _frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGUSR1, on_usr1)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
    chunks, crossed_at, lowest = [], None, None
    start = time.monotonic()
    while not stop and len(chunks) * CHUNK < cap:
        chunks.append(b"\x5a" * CHUNK)  # written, so resident
        avail = mem_available()
        lowest = avail if lowest is None else min(lowest, avail)
        if crossed_at is None and avail < threshold:
            crossed_at = time.monotonic()
    if not stop:
        # Cap reached without a trigger: give the daemon 10 s more, then give up.
        deadline = time.monotonic() + 10
        while not stop and time.monotonic() < deadline:
            time.sleep(0.01)
    allocated = len(chunks) * CHUNK
    msg = f"{int(stop)} {allocated} {crossed_at or 0} {lowest or 0}\n"
    os.write(report_fd, msg.encode())
    os._exit(0)


def wait_log(path, needle, count, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, errors="replace") as f:
            if f.read().count(needle) >= count:
                return True
        time.sleep(0.02)
    return False


def log_count(path, needle):
    with open(path, errors="replace") as f:
        return f.read().count(needle)


def write_config(path, fifo, threshold, recover):
    with open(path, "w") as f:
        f.write(
            "[memory]\n"
            f'min_available = "{threshold}B"\n'
            f'recover_available = "{recover}B"\n'
            "[action]\n"
            'mode = "sysrq"\n'
            f'sysrq_trigger = "{fifo}"\n'
            'repeat_after = "1s"\n'
            "[poll]\n"
            'min_interval = "1ms"\n'
            'idle_interval = "100ms"\n'
            'max_interval = "2s"\n'
            'fill_rate = "12GiB/s"\n'
            "psi = true\n"
            "[kubernetes]\n"
            "log_heaviest = false\n"
        )
    os.chmod(path, 0o644)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--binary", default="build/src/oomguard")
    ap.add_argument("--margin-mib", type=int, default=1024, help="threshold below current MemAvailable")
    ap.add_argument("--alloc-mib", type=int, default=1536, help="allocation cap per episode")
    args = ap.parse_args()
    margin, cap = args.margin_mib * MiB, args.alloc_mib * MiB
    if cap <= margin:
        sys.exit("soak: --alloc-mib must exceed --margin-mib, or no episode crosses")

    tmp = tempfile.mkdtemp(prefix="oomguard-soak-")
    fifo = os.path.join(tmp, "trigger.fifo")
    cfg = os.path.join(tmp, "oomguard.toml")
    log = os.path.join(tmp, "daemon.log")
    os.mkfifo(fifo, 0o600)
    # Hard safety check: the trigger is this script's FIFO, nothing else.
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and os.path.realpath(fifo) != "/proc/sysrq-trigger"
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    # A writer of our own keeps the FIFO from reporting EOF (select: readable)
    # after each of the daemon's open-write-close.
    keep_open = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)

    avail = mem_available()
    write_config(cfg, fifo, avail - margin, avail - margin // 2)
    daemon = subprocess.Popen([args.binary, "--config", cfg, "--log-target=stderr"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=open(log, "w"))
    child = None
    episodes, acted, repeats, unexpected, reload_failures, recoveries = 0, 0, 0, 0, 0, 0
    before_cap = 0  # episodes where the 'f' stopped the allocator before its cap
    no_pressure = 0  # attempts where MemAvailable never crossed (others freed memory)
    reactions, samples, missed = [], [], []
    try:
        if not wait_log(log, "start: oomguard", 1, 5):
            sys.exit("soak: the daemon did not start:\n" + open(log).read())
        samples.append(proc_status(daemon.pid))
        end = time.monotonic() + args.minutes * 60
        while time.monotonic() < end:
            # Anything in the FIFO now came from outside an episode.
            try:
                unexpected += os.read(reader, 4096).count(b"f")
            except BlockingIOError:
                pass
            avail = mem_available()
            threshold, recover = avail - margin, avail - margin // 2
            reloads = log_count(log, "reloaded")
            write_config(cfg, fifo, threshold, recover)
            daemon.send_signal(signal.SIGHUP)
            if not wait_log(log, "reloaded", reloads + 1, 5):
                reload_failures += 1
                continue
            recovered_before = log_count(log, "recovered:")

            episodes += 1
            rfd, wfd = os.pipe()
            # SIGUSR1 stays blocked until the child's handler is in place.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
            child = os.fork()
            if child == 0:
                try:
                    os.close(rfd)
                    os.close(reader)
                    os.close(keep_open)
                    allocator(threshold, cap, wfd)
                finally:
                    os._exit(3)  # never run the parent's cleanup in the child
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
            os.close(wfd)
            got_f = False
            ready, _, _ = select.select([reader], [], [], 20)
            t_f = time.monotonic()
            if ready:
                try:
                    got_f = os.read(reader, 4096).count(b"f") > 0
                except BlockingIOError:
                    pass
            os.kill(child, signal.SIGUSR1)
            report = os.read(rfd, 256).decode().split()
            os.close(rfd)
            _, status = os.waitpid(child, 0)
            child = None
            if len(report) < 3:
                sys.exit(f"soak: the allocating child failed (wait status {status})")
            stopped, allocated, crossed_at = int(report[0]), int(report[1]), float(report[2])
            lowest = int(report[3])
            if not got_f and not crossed_at:
                # Other processes freed memory meanwhile: MemAvailable never went
                # below the threshold, so there was nothing to act on. Not counted.
                episodes -= 1
                no_pressure += 1
                continue
            if got_f:
                acted += 1
                before_cap += allocated < cap
                if crossed_at:
                    reactions.append(t_f - crossed_at)
            else:
                missed.append(f"episode {episodes}: no 'f' within 20 s although the allocator saw MemAvailable "
                              f"{(threshold - lowest) / MiB:.0f} MiB below the threshold "
                              f"(allocated {allocated // MiB} MiB)")
            if not wait_log(log, "recovered:", recovered_before + 1, 15):
                missed.append(f"episode {episodes}: no recovery entry")
            else:
                recoveries += 1
            time.sleep(0.2)
            try:
                repeats += os.read(reader, 4096).count(b"f")
            except BlockingIOError:
                pass
            samples.append(proc_status(daemon.pid))
    finally:
        if child:
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
        daemon.send_signal(signal.SIGTERM)
        try:
            rc = daemon.wait(5)
        except subprocess.TimeoutExpired:
            daemon.kill()
            rc = "killed (did not stop on SIGTERM)"
        os.close(reader)
        os.close(keep_open)

    first, last = samples[0], samples[-1]
    peak_rss = max(s["VmRSS"] for s in samples)
    triggers = log_count(log, "trigger: MemAvailable")
    failures = log_count(log, "trigger failed")

    def ms(v):
        return f"{v * 1000:.1f} ms"

    print(f"oomguard soak: {args.minutes:g} min, threshold = MemAvailable - {args.margin_mib} MiB, "
          f"allocating up to {args.alloc_mib} MiB per episode, {CHUNK // MiB} MiB steps")
    print(f"  episodes            {episodes}   (+{no_pressure} attempts where other processes freed memory "
          f"meanwhile and MemAvailable never crossed: not counted)")
    print(f"  acted on            {acted} ('f' received; {before_cap} of them before the allocator reached "
          f"its {args.alloc_mib} MiB cap)")
    for m in missed:
        print(f"    missed: {m}")
    print(f"  recovered entries   {recoveries}")
    print(f"  trigger entries     {triggers} (repeats {repeats}, failed writes {failures}, "
          f"'f' outside episodes {unexpected})")
    print(f"  reload failures     {reload_failures}")
    if reactions:
        r = sorted(reactions)
        # The allocator looks at MemAvailable after each step, so the daemon often
        # fires before the allocator itself has seen the crossing (negative).
        print(f"  crossing seen by the allocator -> 'f' read: median {ms(statistics.median(r))}, "
              f"p95 {ms(r[int(0.95 * (len(r) - 1))])}, max {ms(r[-1])}")
    # How far below the threshold MemAvailable was when the daemon fired (first
    # trigger of each episode), from the daemon's own fields: detection precision.
    depths = []
    with open(log, errors="replace") as f:
        for line in f:
            if "trigger: MemAvailable" in line and "OOMGUARD_REPEAT=0" in line:
                fields = dict(kv.split("=", 1) for kv in line.split() if kv.startswith("OOMGUARD_") and "=" in kv)
                depths.append(int(fields["OOMGUARD_THRESHOLD_BYTES"]) - int(fields["OOMGUARD_MEM_AVAILABLE_BYTES"]))
    if depths:
        print(f"  MemAvailable below the threshold when the daemon fired: median {statistics.median(depths) / MiB:.1f} MiB, "
              f"max {max(depths) / MiB:.1f} MiB (allocating at ~{CHUNK // MiB} MiB per step)")
    print(f"  daemon VmRSS         first {first['VmRSS'] / 1024:.0f} KiB, last {last['VmRSS'] / 1024:.0f} KiB, "
          f"peak {peak_rss / 1024:.0f} KiB (VmHWM {last['VmHWM'] / 1024:.0f} KiB)")
    print(f"  daemon VmLck         first {first['VmLck'] / 1024:.0f} KiB, last {last['VmLck'] / 1024:.0f} KiB")
    print(f"  daemon open fds      first {first['fds']}, last {last['fds']}")
    print(f"  daemon exit          {rc}")
    print(f"  daemon log           {log}")
    flat = last["fds"] == first["fds"] and last["VmRSS"] <= first["VmRSS"] + 1 * MiB and \
        last["VmLck"] <= first["VmLck"] + 1 * MiB
    ok = episodes > 0 and acted == episodes and recoveries == episodes and flat and rc == 0
    print("  result              " + ("OK: every episode acted on, no growth" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
