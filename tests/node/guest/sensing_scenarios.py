"""The node lab's scenarios about what the daemon senses: the PSI trigger
armed at start and a real memory stall waking the loop (5), and the
working-set ranking against a page-cache decoy (3). Runs inside the VM."""
import json
import os
import re
import subprocess
import time

from lab import CG, MSG, RUN, Pod, check, cursor, fig, journal, main_pid, msg, note, proc_field, read, report, \
    run, wait_entry, wait_for


def scenario5_armed():
    starts = journal(None, MSG["start"])
    text = msg(starts[-1]) if starts else ""
    check("PSI trigger on" in text, "5. the daemon armed a PSI trigger at start ('PSI trigger on')", text[:300])
    unavailable = [msg(e) for e in journal() if "PSI trigger unavailable" in msg(e)]
    check(not unavailable, "5. no 'PSI trigger unavailable' fallback", "; ".join(unavailable)[:300])
    # The window: strace the write the daemon makes when a reload re-arms it.
    pid = main_pid()
    cap = int(proc_field(pid, "CapEff") or "0", 16)
    check(cap & (1 << 24), "5. the daemon holds CAP_SYS_RESOURCE (CapEff)", proc_field(pid, "CapEff"))
    log = f"{RUN}/strace-reload.txt"
    # -y: strace names the file behind each fd as the daemon saw it.
    st = subprocess.Popen(["strace", "-f", "-qq", "-y", "-e", "trace=write", "-e", "signal=none", "-s", "64",
                           "-o", log, "-p", str(pid)], stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # attached
    cur = cursor()
    run(["systemctl", "reload", "oomguard"])
    wait_entry(cur, "reload", 15)
    time.sleep(0.5)
    st.terminate()
    st.wait(timeout=10)
    armed = re.findall(r'write\((\d+)</proc/pressure/memory>, "(some \d+ \d+)\\0", \d+\) = (-?\d+)', read(log))
    check(any(s == "some 20000 500000" and rc != "-1" for _, s, rc in armed),
          "5. the trigger armed on /proc/pressure/memory is the 500 ms window ('some 20000 500000' accepted)",
          "; ".join(f"fd {fd}: {s!r} = {rc}" for fd, s, rc in armed) or read(log)[-300:])
    return next((int(fd) for fd, s, rc in armed if rc != "-1"), None)


def scenario5_stall(psi_fd):
    pid = main_pid()
    if psi_fd is None or not os.path.exists(f"/proc/{pid}/fd/{psi_fd}") \
            or os.readlink(f"/proc/{pid}/fd/{psi_fd}") != "/proc/pressure/memory":
        psi_fd = next((int(fd) for fd in os.listdir(f"/proc/{pid}/fd")
                       if os.readlink(f"/proc/{pid}/fd/{fd}") == "/proc/pressure/memory"), None)
    if psi_fd is None:
        report("FAIL", "5. the daemon has /proc/pressure/memory open", f"fds of {pid}")
        return
    # A real memory stall: a container over its memory.high is throttled by the
    # kernel (mem_cgroup_handle_over_high), which PSI counts as a memory stall;
    # without swap its anonymous memory cannot be reclaimed, so it stalls and
    # stalls. MemAvailable stays high: only PSI can wake the loop early.
    def some_total():
        m = re.search(r"some .* total=(\d+)", read("/proc/pressure/memory"))
        return int(m.group(1)) if m else 0
    log = f"{RUN}/strace-psi.txt"
    # The loop waits in epoll_pwait2, or in ppoll where epoll is refused (LoopPoller).
    st = subprocess.Popen(["strace", "-qq", "-tt", "-e", "trace=poll,ppoll,epoll_pwait2", "-e", "signal=none",
                           "-o", log, "-p", str(pid)], stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    before = some_total()
    pod = Pod("Burstable", "lab", "stall-0", "throttled", 900)
    try:
        pod.start("--anon", 256, "--hold", 5, wait_ready=False, props=("MemoryHigh=40M",))
        time.sleep(6)
    finally:
        pod.stop()
    stall_us = some_total() - before
    time.sleep(0.5)
    st.terminate()
    st.wait(timeout=10)
    fig("psi_some_stall_ms", f"{stall_us / 1000:.0f}")
    text = read(log)
    lines = text.splitlines()
    # ppoll: "{fd=6, revents=POLLPRI}"; epoll_pwait2: each event's data carries
    # its fd in the low half, "{events=EPOLLPRI, data={u32=6, ...}}".
    wakes = [l for l in lines
             if re.search(rf"\{{fd={psi_fd}, revents=[^}}]*POLLPRI", l)
             or re.search(rf"\{{events=[^,}}]*EPOLLPRI[^,}}]*, data=\{{u32={psi_fd},", l)]
    waits = sorted({m.group(1) for l in lines for m in [re.match(r"\S+ (\w+)\(", l)] if m})
    note(f"the loop waited in {', '.join(waits) or 'nothing traced'} ({len(lines)} traced waits)")
    fig("psi_wakes", len(wakes))
    if stall_us < 20000:
        report("SKIP", "5. a PSI wake under a real stall",
               f"the stall generator produced only {stall_us} us of 'some' memory stall")
        return
    check(len(wakes) > 0, f"5. a real memory stall ({stall_us / 1000:.0f} ms 'some' in ~6 s) woke the loop "
                          f"via POLLPRI on the PSI fd {psi_fd}",
          wakes[0][:200] if wakes else f"no POLLPRI on fd {psi_fd} in {len(lines)} traced waits "
                                         f"({', '.join(waits) or 'none'}): {text[-300:]!r}")


def scenario3():
    # A page-cache-heavy decoy (usage high, working set low) and a worker with
    # real anonymous memory: kubelet's ranking (and oomguard's) is by working set.
    decoy = Pod("BestEffort", "lab", "cache-warmer-5x7", "reader", 1000)
    worker = Pod("Burstable", "lab", "api-6c9d", "app", 600)
    try:
        decoy.start("--file", "/var/tmp/decoy.bin", "--file-mib", 500, "--anon", 8, "--hold", 120)
        worker.start("--anon", 200, "--hold", 120)
        dc, di, da = decoy.current(), decoy.stat("inactive_file"), decoy.stat("active_file")
        wc, wi = worker.current(), worker.stat("inactive_file")
        note(f"decoy: memory.current {dc >> 20} MiB, inactive_file {di >> 20} MiB, active_file {da >> 20} MiB; "
             f"worker: memory.current {wc >> 20} MiB, inactive_file {wi >> 20} MiB")
        fig("decoy_current_mib", dc >> 20)
        fig("decoy_inactive_file_mib", di >> 20)
        fig("decoy_active_file_mib", da >> 20)
        if not check(dc > wc, "3. the decoy's memory.current (page cache charged to it) exceeds the worker's",
                     f"{dc >> 20} vs {wc >> 20} MiB"):
            return

        def ranking():
            r = run(["oomguardctl", "top", "-n", "10", "--json"])
            try:
                rows = json.loads(r.stdout)
            except json.JSONDecodeError:
                return None
            pods = [x for x in rows if not x.get("container")]
            names = [x.get("pod") for x in pods]
            return rows if decoy.name in names and worker.name in names else None
        rows = wait_for(ranking, 25, 1.0)
        if not check(rows is not None, "3. oomguardctl top lists both pods",
                     run(["oomguardctl", "top", "-n", "10"]).stdout[-600:]):
            return
        pods = [x for x in rows if not x.get("container")]
        check(pods[0].get("pod") == worker.name,
              "3. the worker (real memory) ranks first, not the page-cache decoy",
              ", ".join(f"{x.get('pod')} {int(x.get('working_set_bytes', 0)) >> 20} MiB" for x in pods[:4]))
        ws = {x["pod"]: int(x["working_set_bytes"]) for x in pods}
        # kubelet's working set, from the kernel's own files, read again now.
        dws = decoy.current() - decoy.stat("inactive_file")
        slice_ws = int(read(CG + os.path.dirname(decoy.cgroup) + "/memory.current")) - \
            int(re.search(r"^inactive_file (\d+)", read(CG + os.path.dirname(decoy.cgroup) + "/memory.stat"),
                          re.M).group(1))
        check(abs(ws[decoy.name] - slice_ws) < (16 << 20),
              "3. oomguard's working set of the decoy pod = memory.current - inactive_file (+-16 MiB)",
              f"oomguard {ws[decoy.name] >> 20} MiB, kernel files {slice_ws >> 20} MiB "
              f"(container {dws >> 20} MiB, usage {decoy.current() >> 20} MiB)")
    finally:
        decoy.stop()
        worker.stop()
        try:
            os.unlink("/var/tmp/decoy.bin")
        except OSError:
            pass
