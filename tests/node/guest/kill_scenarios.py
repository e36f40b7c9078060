"""The node lab's scenarios where memory runs out: the real sysrq trigger
with the shipped config and what the kernel and the journal said (2, with
the daemon's own resilience, 6, and the prediction, 14), and kill-cgroup
with the daemon started before or after the kubepods tree (4). Runs inside
the VM."""
import re
import time

from lab import MSG, RUN, SHIPPED_THRESHOLD, Kmsg, Pod, alive, check, config_text, crossing_time, cursor, \
    dump_journal, fig, journal, killed, kmsg_clock_offset, main_pid, majflt, meminfo, msg, note, proc_field, read, \
    run, set_key, show, wait_entry, wait_for, write_config


def scenario2(ctx):
    """The real trigger, with the shipped config."""
    shipped = run(["dpkg-query", "-W", "-f=${Conffiles}", "oomguard"]).stdout
    m = re.search(r"/etc/oomguard.toml (\w+)", shipped)
    md5 = run(["md5sum", "/etc/oomguard.toml"]).stdout.split()[0]
    check(m is not None and m.group(1) == md5, "2. /etc/oomguard.toml is the shipped conffile, unchanged",
          f"md5 {md5}, package {m.group(1) if m else '?'}")
    db = Pod("Guaranteed", "prod", "db-0", "postgres", -997).start("--anon", 64, "--hold", 300)
    web = Pod("Burstable", "prod", "web-7d9f8b6c5-q2x7z", "nginx", 500).start("--anon", 96, "--hold", 300)
    hog = Pod("BestEffort", "batch", "leaky-job-x2k4q", "leaker", 1000)
    daemon = main_pid()
    restarts = show("NRestarts")
    flt0 = majflt(daemon)
    adj0 = read(f"/proc/{daemon}/oom_score_adj").strip()
    lck0 = proc_field(daemon, "VmLck")
    kmsg = Kmsg()
    cur = cursor()
    avail = meminfo()["MemAvailable"] >> 20
    log = f"{RUN}/hog2.log"
    off0, why0 = kmsg_clock_offset()
    fig("mem_available_before_hog_mib", avail)
    try:
        # Memory enough to run the VM out of it: the guard (or else the kernel)
        # must stop it. 150 MiB/s, as a leaking job does.
        hog.start("--anon", avail + 256, "--rate", 150, "--crossing-mib", 350, "--log", log,
                  "--samples", f"{RUN}/hog2.samples",
                  "--procs", 3, "--hold", 120, oom_group=True, wait_ready=False)
        hog_pids = hog.pids()
        main = hog.proc.pid
        if getattr(hog, "oom_group_resets", 0):
            note(f"memory.oom.group=1 was reset to 0 {hog.oom_group_resets} time(s) right after the scope started "
                 "(systemd applying the unit's own value); written again")
        check(len(hog_pids) == 3 and read(hog.path("memory.oom.group")).strip() == "1",
              "2. BestEffort container: 3 processes, oom_score_adj 1000, memory.oom.group=1",
              f"pids {hog_pids}, oom_score_adj {read(f'/proc/{main}/oom_score_adj').strip()}")
        died = None
        t0 = time.monotonic()
        while time.monotonic() - t0 < 90:
            if hog.proc.poll() is not None:
                died = time.monotonic_ns()
                break
            time.sleep(0.01)
        if not check(died is not None, "2. the BestEffort hog was stopped (it never got all it asked for)",
                     f"rc {hog.proc.returncode}" if died else "still running after 90 s"):
            return
        fig("hog_exit_code", hog.proc.returncode)
        time.sleep(1.5)  # the rest of the group, the kernel's log, the victim entry
        recs = kmsg.since(kmsg.mark)
        texts = [t for _, _, t in recs]
        check(any("sysrq: Manual OOM execution" in t for t in texts),
              "2. the kernel logged 'sysrq: Manual OOM execution'",
              next((t for t in texts if "sysrq" in t), "no sysrq line"))
        invoked = [t for t in texts if "invoked oom-killer" in t]
        check(invoked and all("order=-1" in t for t in invoked),
              "2. every OOM kill in the window was sysrq's (order=-1), none the kernel's own",
              "; ".join(invoked)[:400])
        k = killed(recs)
        victims = {pid for pid, _, _ in k}
        # The kernel does not always log every member of an oom.group kill (a
        # task already exiting when the group is walked is skipped silently:
        # seen in this lab, 2 of 3 logged); all of them must be dead.
        check(victims and victims <= set(hog_pids) and all(not alive(p) for p in hog_pids),
              "2. the kernel killed the BestEffort container's tasks and nothing else",
              f"killed {sorted(k)}, container {hog_pids}")
        oomkill = [t for t in texts if t.startswith("oom-kill:")]
        check(oomkill and all(f"task_memcg={hog.cgroup}," in t for t in oomkill),
              "2. oom-kill line: task_memcg is the BestEffort container's scope", "; ".join(oomkill)[:400])
        check(any("memory.oom.group" in t for t in texts),
              "4. with memory.oom.group=1 the kernel killed the whole container",
              next((t for t in texts if "oom.group" in t), "no 'memory.oom.group' line") +
              f"; {len(victims & set(hog_pids))}/{len(hog_pids)} processes killed")
        others = db.pids() + web.pids()
        check(others and all(alive(p) for p in others), "2. the Guaranteed and Burstable pods' tasks live on",
              f"{others}")
        kill_ts = min((ts for pid, _, ts in k if pid in hog_pids), default=None)
        cross_ns, how = crossing_time(f"{RUN}/hog2.samples", log, SHIPPED_THRESHOLD >> 10)
        off1, why1 = kmsg_clock_offset()
        if off0 is None or off1 is None:
            note(f"cannot relate /dev/kmsg timestamps to CLOCK_MONOTONIC: {why0 or why1}; assuming equal")
            off0 = off1 = 0
        else:
            fig("kmsg_clock_minus_monotonic_ms", f"{off0 / 1e6:.3f}")
            note(f"/dev/kmsg timestamps (local_clock) minus CLOCK_MONOTONIC: {off0 / 1e6:.3f} ms before the hog, "
                 f"{off1 / 1e6:.3f} ms after")
        if cross_ns:
            note(f"crossing: {how}")
            if kill_ts is not None:
                kill_mono = kill_ts * 1000 - (off0 + off1) // 2
                ctx["crossing_to_kill_ms"] = (kill_mono - cross_ns) / 1e6
                fig("crossing_to_kill_ms", f"{ctx['crossing_to_kill_ms']:.1f}")
            fig("crossing_to_hog_exit_seen_ms", f"{(died - cross_ns) / 1e6:.1f}")
        else:
            note(f"no crossing time: {how}")
        trig = journal(cur, MSG["trigger"])
        if not trig:
            dump_journal(cur, daemon)
        if check(bool(trig), "2. oomguard's trigger entry (MESSAGE_ID trigger) is in the journal",
                 f"{len(trig)} trigger entries"):
            e = trig[0]
            note("trigger: " + msg(e).splitlines()[0][:350])
            got = {k2: e.get(k2) for k2 in ("OOMGUARD_POD_NAMESPACE", "OOMGUARD_POD_NAME",
                                             "OOMGUARD_CONTAINER_NAME", "OOMGUARD_QOS", "OOMGUARD_ACTION",
                                             "OOMGUARD_THRESHOLD_BYTES", "OOMGUARD_DRY_RUN")}
            want = {"OOMGUARD_POD_NAMESPACE": "batch", "OOMGUARD_POD_NAME": hog.name,
                    "OOMGUARD_CONTAINER_NAME": "leaker", "OOMGUARD_QOS": "BestEffort",
                    "OOMGUARD_ACTION": "sysrq", "OOMGUARD_THRESHOLD_BYTES": str(SHIPPED_THRESHOLD),
                    "OOMGUARD_DRY_RUN": "0"}
            check(got == want, "2. the trigger entry names the BestEffort pod and container (sysrq, 350 MiB)",
                  f"got {got}")
            # Issue 14: the predicted victim, scanned below the recovery level (the
            # shipped config has no warning level), is a task of the hog's container.
            pred = {k2: e.get(k2) for k2 in ("OOMGUARD_PREDICTED_PID", "OOMGUARD_PREDICTED_POD_NAME",
                                              "OOMGUARD_PREDICTED_CONTAINER_NAME",
                                              "OOMGUARD_PREDICTED_OOM_SCORE", "OOMGUARD_PREDICTED_AGE_USEC")}
            check(pred["OOMGUARD_PREDICTED_PID"] is not None and
                  int(pred["OOMGUARD_PREDICTED_PID"]) in hog_pids and
                  pred["OOMGUARD_PREDICTED_POD_NAME"] == hog.name and
                  pred["OOMGUARD_PREDICTED_CONTAINER_NAME"] == "leaker",
                  "14. the trigger entry predicts the kernel's victim: a task of the BestEffort container",
                  f"predicted {pred} (OOMGUARD_PREDICTED={e.get('OOMGUARD_PREDICTED')}), hog pids {hog_pids}")
            fig("triggers_in_episode", len(trig))
            check(len(trig) == 1, "2. one trigger: the kill brought memory back before repeat_after",
                  f"{len(trig)} triggers: " + " | ".join(msg(x).splitlines()[0][:120] for x in trig))
            if cross_ns:
                # journald's receive time is CLOCK_MONOTONIC too (same boot).
                fig("crossing_to_trigger_logged_ms",
                    f"{(int(e['__MONOTONIC_TIMESTAMP']) * 1000 - cross_ns) / 1e6:.1f}")
        vic = wait_entry(cur, "victim", 20)
        time.sleep(1)
        vics = journal(cur, MSG["victim"])
        fig("victim_entries", len(vics))
        for v in vics:
            note(f"victim entry: pid {v.get('OOMGUARD_VICTIM_PID')} regained "
                 f"{int(v.get('OOMGUARD_REGAINED_BYTES', 0)) >> 20} MiB within "
                 f"{int(v.get('OOMGUARD_REGAIN_USEC', 0)) / 1000:.0f} ms, RSS "
                 f"{int(v.get('OOMGUARD_VICTIM_RSS_BYTES', 0)) >> 20} MiB")
        if check(vic is not None, "2. oomguard's victim entry (from /dev/kmsg) is in the journal"):
            note("victim: " + msg(vic)[:350])
            got = {k2: vic.get(k2) for k2 in ("OOMGUARD_POD_NAMESPACE", "OOMGUARD_POD_NAME",
                                               "OOMGUARD_CONTAINER_NAME", "OOMGUARD_AFTER_TRIGGER")}
            want = {"OOMGUARD_POD_NAMESPACE": "batch", "OOMGUARD_POD_NAME": hog.name,
                    "OOMGUARD_CONTAINER_NAME": "leaker", "OOMGUARD_AFTER_TRIGGER": "1"}
            check(got == want and int(vic.get("OOMGUARD_VICTIM_PID", 0)) in hog_pids,
                  "2. the victim entry names the pod and container again (pid of the container, after the trigger)",
                  f"got {got}, pid {vic.get('OOMGUARD_VICTIM_PID')}")
            check(vic.get("OOMGUARD_PREDICTION_MATCHED") == "1",
                  "14. the kernel killed the predicted task (or its memory.oom.group with it)",
                  f"MATCHED={vic.get('OOMGUARD_PREDICTION_MATCHED')} by {vic.get('OOMGUARD_PREDICTION_MATCH')}, "
                  f"predicted pid {vic.get('OOMGUARD_PREDICTED_PID')}, victim pid {vic.get('OOMGUARD_VICTIM_PID')}")
            regained = int(vic.get("OOMGUARD_REGAINED_BYTES", 0))
            fig("regained_mib", regained >> 20)
            if vic.get("OOMGUARD_KILL_LATENCY_USEC"):
                fig("trigger_to_kill_ms_oomguard", f"{int(vic['OOMGUARD_KILL_LATENCY_USEC']) / 1000:.1f}")
            else:
                # The daemon subtracts its CLOCK_MONOTONIC trigger time from the
                # kmsg timestamp (local_clock) and drops a negative result.
                note("the victim entry has no OOMGUARD_KILL_LATENCY_USEC: the kmsg timestamp minus the "
                     "daemon's CLOCK_MONOTONIC trigger time was negative or > 60 s (the two clocks differ by "
                     f"{(off0 + off1) / 2e6:.1f} ms here)")
            check(regained > 0, "2. the victim entry says how much memory came back",
                  f"{regained >> 20} MiB within {int(vic.get('OOMGUARD_REGAIN_USEC', 0)) / 1000:.0f} ms; "
                  f"the container's RSS was {int(vic.get('OOMGUARD_VICTIM_RSS_BYTES', 0)) >> 20} MiB")
            vic_pids = [v.get("OOMGUARD_VICTIM_PID") for v in vics]
            check(len(vic_pids) == len(set(vic_pids)),
                  "2. one victim entry per killed process (with memory.oom.group the kernel logs "
                  "'Killed process' twice for the victim: as the victim and as a group member)",
                  f"victim entries for pids {vic_pids}")
        rec = wait_entry(cur, "recovered", 20)
        check(rec is not None, "2. oomguard logged the recovery", msg(rec)[:200])
        # The node kept working.
        mi = meminfo()["MemAvailable"] >> 20
        r = run(["systemd-run", "--wait", "--quiet", "--collect", "/bin/true"], timeout=60)
        check(r.returncode == 0 and mi > 700 and show("ActiveState") == "active" and main_pid() == daemon,
              "2. the node kept working (MemAvailable back, systemd starts units, oomguard active, same pid)",
              f"MemAvailable {mi} MiB, systemd-run rc {r.returncode}, oomguard {show('ActiveState')}")
        # 6: the guard itself under that pressure.
        check(main_pid() == daemon and show("NRestarts") == restarts and daemon not in victims,
              "6. the daemon was never the victim (same MainPID, NRestarts unchanged)",
              f"pid {daemon}, NRestarts {restarts} -> {show('NRestarts')}")
        flt1 = majflt(daemon)
        fig("daemon_majflt_during_pressure", flt1 - flt0)
        check(adj0 == "-1000" and read(f"/proc/{daemon}/oom_score_adj").strip() == "-1000",
              "6. OOMScoreAdjust=-1000 held under pressure", adj0)
        check(lck0 and int(lck0) > 0 and int(proc_field(daemon, "VmLck") or 0) >= int(lck0) and flt1 - flt0 == 0,
              "6. mlockall held under pressure (VmLck unchanged, no major faults)",
              f"VmLck {lck0} kB -> {proc_field(daemon, 'VmLck')} kB, majflt +{flt1 - flt0}")
        supp = [msg(x) for x in journal(cur, unit="systemd-journald")
                if "uppressed" in msg(x) and "oomguard" in msg(x)]
        n = len(journal(cur))
        fig("oomguard_entries_in_episode", n)
        check(not supp and trig, "6. journald's rate limit dropped nothing of oomguard's (trigger entry there)",
              (supp[0] if supp else f"{n} oomguard entries in the episode, journald reported no suppression"))
    finally:
        hog.stop()
        db.stop()
        web.stop()


def kubepods_view(pid):
    """The daemon's mount of /sys/fs/cgroup/kubepods.slice: 'rw', 'ro' or None
    (no mount of its own: read-only like all of cgroupfs under ProtectControlGroups=)."""
    for l in read(f"/proc/{pid}/mountinfo").splitlines():
        f = l.split()
        if len(f) > 5 and f[4] == "/sys/fs/cgroup/kubepods.slice":
            return "rw" if f[5].split(",")[0] == "rw" else "ro"
    return None


def scenario4(ctx, early):
    """kill-cgroup on real v2: the container emptied, a critical pod never chosen.
    early: the daemon installed before any kubepods tree existed (oomguard
    starting before kubelet at boot), switched by a reload; else restarted once
    the tree exists (kubelet first), which gives it a writable view."""
    tag = "4a" if early else "4b"
    shipped = config_text()
    crit = Pod("Guaranteed", "prod", "critical-etcd-0", "etcd", -997)
    be = Pod("BestEffort", "batch", "crawler-8f5", "crawl", 1000)
    try:
        write_config(set_key(shipped, "action", "mode", '"kill-cgroup"'))
        avail = meminfo()["MemAvailable"] >> 20
        crit.start("--anon", max(200, min(900, avail - 800)), "--hold", 200)
        if early:
            cur = cursor()
            run(["systemctl", "reload", "oomguard"])
            wait_entry(cur, "reload", 15)
            view = kubepods_view(main_pid())
            check(view is None, f"{tag}. daemon started before kubepods.slice existed: its view of the tree "
                                "is read-only (ReadWritePaths= bound only what existed)", f"view {view}")
        else:
            run(["systemctl", "restart", "oomguard"], timeout=60)
            wait_for(lambda: show("ActiveState") == "active", 30)
            view = kubepods_view(main_pid())
            check(view == "rw", f"{tag}. after a restart with the tree present its view of kubepods.slice is "
                                "writable (ReadWritePaths=)", f"view {view}")
        pid = main_pid()
        cur = cursor()
        kmsg = Kmsg()
        avail = meminfo()["MemAvailable"] >> 20
        be.start("--anon", avail + 256, "--rate", 150, "--procs", 3, "--hold", 120, wait_ready=False)
        pids = be.pids()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 90 and be.proc.poll() is None:
            time.sleep(0.02)
        gone = wait_for(lambda: not read(be.path("cgroup.procs")).split(), 5, 0.05)
        trig = journal(cur, MSG["trigger"])
        if not trig:
            dump_journal(cur, pid)
        text = msg(trig[0]) if trig else ""
        note(f"{tag} kill-cgroup trigger: " + (text.splitlines()[0][:350] if text else "no trigger entry"))
        chosen = re.search(r"killed container (\S+) of pod (\S+) .* via (cgroup\.kill|SIGKILL to cgroup\.procs)",
                           text.splitlines()[0] if text else "")
        method = chosen.group(3) if chosen else None
        want = ("SIGKILL to cgroup.procs", "cgroup.kill") if early else ("cgroup.kill",)
        check(trig and trig[0].get("OOMGUARD_ACTION") == "kill-cgroup" and chosen and chosen.group(1) == "crawl"
              and chosen.group(2) == f"{be.namespace}/{be.name}" and method in want,
              f"{tag}. kill-cgroup killed the BestEffort container via {' or '.join(want)}",
              f"via {method}" if chosen else text.splitlines()[0][:300] if text else "no trigger entry")
        if method:
            fig(f"kill_cgroup_method_{tag}", method.replace(" ", "_"))
        check(gone and all(not alive(p) for p in pids), f"{tag}. the container is empty (all 3 processes dead)",
              f"pids {pids}, cgroup.procs now {read(be.path('cgroup.procs')).split()}")
        ws_crit = crit.current() - (crit.stat("inactive_file") or 0)
        check(chosen and crit.pids() and all(alive(p) for p in crit.pids()),
              f"{tag}. the critical Guaranteed (-997) pod was not chosen, though its working set was the largest",
              f"chose {chosen.group(2) if chosen else '?'}; {crit.name} working set {ws_crit >> 20} MiB, alive")
        k = killed(kmsg.since(kmsg.mark))
        check(not k, f"{tag}. the kernel's OOM killer did not have to act", f"{k}")
    finally:
        be.stop()
        crit.stop()
        write_config(shipped)
        if early:
            cur = cursor()
            run(["systemctl", "reload", "oomguard"])
            wait_entry(cur, "reload", 15)
        else:
            run(["systemctl", "restart", "oomguard"], timeout=60)
            wait_for(lambda: show("ActiveState") == "active", 30)
