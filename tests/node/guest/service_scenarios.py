"""The node lab's scenarios about the installed service: the .deb installed
with apt (0), the unit running and answering (1), reload, journald's rate
limit and the watchdog (6), the node audit (12), remove and purge (7).
Runs inside the VM (driver.py runs them in its order)."""
import glob
import os
import re
import shutil
import time

from lab import (HOG, LAB, MSG, SHIPPED_THRESHOLD, Pod, check, config_text, cursor, fig, journal, main_pid, msg,
                 note, proc_field, read, run, seconds, set_key, show, wait_entry, wait_for, write, write_config)


def install():
    debs = sorted(glob.glob(f"{LAB}/oomguard_*.deb"))
    if not check(len(debs) == 1, "0. the lab disk holds one oomguard_*.deb", " ".join(debs)):
        return False
    deb = "/root/" + os.path.basename(debs[0])
    shutil.copy(debs[0], deb)
    t = time.monotonic()
    r = run(["apt-get", "install", "-y", "-q", "--no-install-recommends", deb], timeout=400)
    took = time.monotonic() - t
    fig("apt_install_s", f"{took:.1f}")
    out = r.stdout + r.stderr
    if not check(r.returncode == 0, f"0. apt-get install ./{os.path.basename(deb)}",
                 f"{took:.0f} s" if r.returncode == 0 else out[-1200:]):
        if "Depends" in out:
            note("a Depends is missing from the cached image: add it to packages= in tests/node/make-image.sh")
        return False
    newly = re.findall(r"^Setting up (\S+)", r.stdout, re.M)
    check([p for p in newly if not p.startswith("oomguard")] == [],
          "0. apt only had to set up oomguard (its Depends are in the image)", " ".join(newly))
    return True


def scenario1():
    active = wait_for(lambda: show("ActiveState") == "active", 30)
    if not check(active, "1. systemctl is-active oomguard: active",
                 "" if active else run(["systemctl", "status", "oomguard", "--no-pager"]).stdout[-1200:]):
        return False
    st = run(["systemctl", "status", "oomguard", "--no-pager"]).stdout
    m = re.search(r'Status: "(MemAvailable [^"]+ / threshold 350 MiB[^"]*)"', st)
    check(m is not None, "1. systemctl status shows active and the STATUS line (threshold 350 MiB)",
          m.group(1) if m else st[-800:])
    check("Active: active (running)" in st, "1. systemctl status: Active: active (running)")
    # Type=notify: the unit becomes active when READY=1 arrives.
    start = int(show("ExecMainStartTimestampMonotonic") or 0)
    ready = int(show("ActiveEnterTimestampMonotonic") or 0)
    limit = seconds(show("TimeoutStartUSec"))
    took = (ready - start) / 1e6
    fig("ready_after_exec_s", f"{took:.3f}")
    check(show("Type") == "notify" and start > 0 and 0 <= took < limit,
          "1. Type=notify READY=1 within TimeoutStartSec", f"{took:.3f} s after exec, limit {limit:g} s")
    check(show("UnitFileState") == "enabled", "1. the package enabled oomguard.service")
    v = run(["systemd-analyze", "verify", "--man=no", "oomguard.service"], timeout=120)
    out = (v.stdout + v.stderr).strip()
    check(v.returncode == 0 and not out, "1. systemd-analyze verify of the installed unit is clean", out[-600:])
    starts = journal(None, MSG["start"])
    e = starts[-1] if starts else {}
    want = {"OOMGUARD_THRESHOLD_BYTES": str(SHIPPED_THRESHOLD), "OOMGUARD_MODE": "sysrq",
            "OOMGUARD_CONFIG": "/etc/oomguard.toml", "OOMGUARD_DRY_RUN": "0", "OOMGUARD_EVENT": "start",
            "_SYSTEMD_UNIT": "oomguard.service"}
    bad = {k: e.get(k) for k, v2 in want.items() if e.get(k) != v2}
    check(e and not bad, "1. the start entry (MESSAGE_ID start) has the shipped config's fields", f"got {bad}" if bad else "")
    # D-Bus: the bus name, a property, oomguardctl as root and as nobody.
    r = run(["busctl", "introspect", "--no-pager", "org.oomguard1", "/org/oomguard1"])
    check(r.returncode == 0 and "org.oomguard1.Manager" in r.stdout,
          "1. busctl introspect org.oomguard1 /org/oomguard1 shows org.oomguard1.Manager", r.stderr.strip()[-300:])
    r = run(["busctl", "get-property", "org.oomguard1", "/org/oomguard1", "org.oomguard1.Manager", "Threshold"])
    check(r.stdout.strip() == f"t {SHIPPED_THRESHOLD}", "1. D-Bus Threshold property is the config's",
          (r.stdout + r.stderr).strip())
    r = run(["oomguardctl", "status"])
    check(r.returncode == 0 and r.stdout.strip(), "1. oomguardctl status answers root", (r.stdout + r.stderr)[-300:])
    r = run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "oomguardctl", "status"])
    check(r.returncode == 0 and r.stdout.strip(), "1. oomguardctl status answers a non-root user",
          (r.stdout + r.stderr)[-300:])
    s = run(["systemd-analyze", "security", "--no-pager", "oomguard.service"], timeout=120)
    m = re.search(r"Overall exposure level for oomguard.service: ([\d.]+)", s.stdout)
    if m:
        fig("security_exposure", m.group(1))
    check(m is not None and float(m.group(1)) <= 2.0,
          "1. systemd-analyze security oomguard <= 2.0 (running unit, pure cgroup v2)",
          m.group(1) if m else (s.stdout + s.stderr)[-300:])
    return True


def scenario6_reload():
    pid = main_pid()
    shipped = config_text()
    bad = set_key(shipped, "memory", "min_available", "350")
    cur = cursor()
    write_config(bad)
    r = run(["systemctl", "reload", "oomguard"])
    e = wait_entry(cur, "reload-failed")
    text = msg(e) + " " + str((e or {}).get("OOMGUARD_CONFIG_ERROR", ""))
    check(e is not None and re.search(r"oomguard\.toml:\d+: memory\.min_available", text),
          "6. systemctl reload with a bad config: the journal names the key and line", text.strip()[:300])
    status_text = show("StatusText")
    st = run(["systemctl", "status", "oomguard", "--no-pager", "-l"]).stdout
    check(r.returncode == 0 and show("ActiveState") == "active" and main_pid() == pid,
          "6. ... and it keeps running with the same pid", f"pid {pid}, STATUS {status_text[:200]!r}")
    check("memory.min_available" in st, "6. ... and systemctl status shows the error naming the key",
          next((l.strip() for l in st.splitlines() if "memory.min_available" in l), st[-400:])[:300])
    cur = cursor()
    write_config(set_key(shipped, "memory", "min_available", '"512MiB"'))
    run(["systemctl", "reload", "oomguard"])
    applied = wait_entry(cur, "reload") and wait_for(lambda: "threshold 512 MiB" in show("StatusText"), 5)
    check(applied and main_pid() == pid, "6. a valid reload applies without a restart (STATUS threshold 512 MiB)",
          show("StatusText")[:200])
    write_config(shipped)
    cur = cursor()
    run(["systemctl", "reload", "oomguard"])
    check(wait_entry(cur, "reload") is not None and wait_for(lambda: "threshold 350 MiB" in show("StatusText"), 5),
          "6. the shipped config reloads cleanly again")


def scenario6_ratelimit():
    """journald's rate limit made tight for the unit (LogRateLimitBurst=3), then
    a flood of oomguard's own NOTICE entries (a SIGHUP storm of reloads) that
    journald must suppress, then a trigger: its entry (WARNING, which journald
    counts in a bucket of its own per priority) must still be stored. Dry-run
    with a level above MemAvailable, so nothing in the VM is killed."""
    shipped = config_text()
    dropin = "/etc/systemd/system/oomguard.service.d/50-lab-ratelimit.conf"
    os.makedirs(os.path.dirname(dropin), exist_ok=True)
    write(dropin, "[Service]\nLogRateLimitIntervalSec=5s\nLogRateLimitBurst=3\n")
    try:
        run(["systemctl", "daemon-reload"])
        run(["systemctl", "restart", "oomguard"])
        wait_for(lambda: show("ActiveState") == "active" and main_pid(), 30)
        pid = main_pid()
        calm = set_key(set_key(shipped, "action", "mode", '"dry-run"'), "action", "repeat_after", '"1h"')
        write_config(calm)
        cur = cursor()
        for _ in range(80):
            os.kill(pid, 1)  # SIGHUP: one reload, one NOTICE entry, each
            time.sleep(0.03)

        # journald says "Suppressed N messages" only once the interval is over:
        # count what it stored of the 80 reload entries instead.
        time.sleep(2)
        stored = len(journal(cur, MSG["reload"]))
        write_config(set_key(calm, "memory", "min_available", '"95%"'))
        t0 = cursor()
        os.kill(pid, 1)
        trig = wait_entry(t0, "trigger", timeout=15)
        fig("ratelimit_reload_entries_stored_of_80", stored)
        # The interval over, oomguard's next NOTICE entry makes journald say how
        # many it dropped: the proof that the flood reached the limit.
        time.sleep(5.5)
        os.kill(pid, 1)

        def suppressed():
            return [msg(x) for x in journal(cur, unit=None)
                    if "uppressed" in msg(x) and "oomguard" in msg(x)]
        supp = wait_for(suppressed, 10)
        check(stored < 40 and supp, "6. journald's rate limit (LogRateLimitBurst=3) suppressed oomguard's reload flood",
              f"{stored} of 80 reload entries stored; journald: {supp[0] if supp else 'no Suppressed message'}")
        check(trig is not None and main_pid() == pid and stored < 40,
              "6. ... and the trigger entry that followed is in the journal (its priority has its own bucket)",
              msg(trig)[:200] if trig else "no trigger entry after the flood")
    finally:
        write_config(shipped)
        try:
            os.remove(dropin)
        except OSError:
            pass
        run(["systemctl", "daemon-reload"])
        run(["systemctl", "restart", "oomguard"])
        wait_for(lambda: show("ActiveState") == "active", 30)


def scenario6_watchdog():
    wd = seconds(show("WatchdogUSec"))
    restart = seconds(show("RestartUSec"))
    pid = main_pid()
    n0 = int(show("NRestarts") or 0)
    t0 = time.monotonic()
    os.kill(pid, 19)  # SIGSTOP

    def restarted():
        return main_pid() not in (0, pid) and show("ActiveState") == "active"
    back = wait_for(restarted, wd + restart + 30)
    took = time.monotonic() - t0
    fig("watchdog_restart_s", f"{took:.1f}")
    check(back and took <= wd + restart + 8,
          f"6. the watchdog restarted the SIGSTOPped daemon (WatchdogSec {wd:g} s + RestartSec {restart:g} s)",
          f"{took:.1f} s, NRestarts {n0} -> {show('NRestarts')}")
    msgs = [msg(e) for e in journal(None, unit="oomguard") if "atchdog" in msg(e)]
    check(any("atchdog timeout" in m for m in msgs), "6. systemd logged the watchdog timeout",
          msgs[-1] if msgs else "")


def scenario12():
    """Issue 14: the node audit flags a planted host service that the kernel
    would kill before the pods (oom_score_adj 0, more memory than a Guaranteed
    pod's score allows), with the fix; and says nothing of the pod."""
    db = Pod("Guaranteed", "prod", "db-1", "postgres", -997).start("--anon", 48, "--hold", 120)
    kubelet = "/usr/local/bin/kubelet"
    shutil.copy(HOG, kubelet)
    os.chmod(kubelet, 0o755)
    unit = "planted-kubelet.service"
    try:
        r = run(["systemd-run", "--quiet", f"--unit={unit}", "-p", "OOMScoreAdjust=0",
                 kubelet, "--oom-score-adj", "0", "--anon", "160", "--hold", "120"])
        check(r.returncode == 0, "12. a planted 'kubelet' service with oom_score_adj 0 runs", r.stderr[-300:])
        pid = [0]

        def grown():
            out = run(["systemctl", "show", "-p", "MainPID", "--value", unit]).stdout.strip()
            pid[0] = int(out) if out.isdigit() else 0
            return pid[0] and int(proc_field(pid[0], "VmRSS") or 0) > 150 << 10
        wait_for(grown, 30)
        score = read(f"/proc/{pid[0]}/oom_score").strip()
        pod_scores = [read(f"/proc/{p}/oom_score").strip() for p in db.pids()]
        note(f"planted kubelet pid {pid[0]} oom_score {score}; the Guaranteed pod's tasks {pod_scores}")
        cur = cursor()
        run(["systemctl", "reload", "oomguard"])  # the audit runs at start, on reload, every 10 min

        def both():
            got = {e.get("OOMGUARD_AUDIT_CHECK") for e in journal(cur, MSG["audit-finding"])
                   if "kubelet" in e.get("OOMGUARD_AUDIT_SUBJECT", "")}
            return got >= {"critical-oom-score-adj", "critical-outranks-pods"} and got
        got = wait_for(both, 30)
        found = [e for e in journal(cur, MSG["audit-finding"])]
        for e in found:
            note("audit: " + msg(e)[:300])
        check(bool(got), "12. the audit flags the planted kubelet: oom_score_adj above -999, and it outranks the pods",
              f"findings {[(e.get('OOMGUARD_AUDIT_CHECK'), e.get('OOMGUARD_AUDIT_SUBJECT')) for e in found]}")
        fixes = [e.get("OOMGUARD_AUDIT_FIX", "") for e in found if "kubelet" in e.get("OOMGUARD_AUDIT_SUBJECT", "")]
        check(fixes and all("OOMScoreAdjust=-999" in f and unit in f for f in fixes),
              "12. each finding says the fix (OOMScoreAdjust=-999 in a drop-in for the unit)", str(fixes[:1]))
        # The D-Bus snapshot follows the daemon's state at its next sample (up to
        # its poll interval after the journal entries): wait a little for it.
        def status_line():
            st = run(["oomguardctl", "status"]).stdout
            line = next((l.strip() for l in st.splitlines() if "Node audit:" in l), "")
            return (line if "critical-oom-score-adj" in line and "critical-outranks-pods" in line else None,
                    line or st[-400:])
        line = wait_for(lambda: status_line()[0], 5) or status_line()[1]
        check("critical-oom-score-adj" in line and "critical-outranks-pods" in line,
              "12. oomguardctl status shows the audit's findings", line)
        check(not any("db-1" in e.get("OOMGUARD_AUDIT_SUBJECT", "") or "postgres" in e.get("OOMGUARD_AUDIT_SUBJECT", "")
                      for e in found), "12. the pod itself is not a finding")
    finally:
        run(["systemctl", "stop", unit])
        db.stop()


def scenario7():
    r = run(["apt-get", "remove", "-y", "-q", "oomguard"], timeout=300)
    check(r.returncode == 0, "7. apt-get remove oomguard", (r.stdout + r.stderr)[-500:] if r.returncode else "")
    state = show("ActiveState")
    unit = run(["systemctl", "cat", "oomguard.service"])
    check(state in ("inactive", "failed", "") and unit.returncode != 0 and not run(["pgrep", "-x", "oomguard"]).stdout,
          "7. after remove: service stopped, the unit is gone", f"ActiveState {state!r}, systemctl cat rc {unit.returncode}")
    check(os.path.exists("/etc/oomguard.toml"), "7. after remove: the conffile /etc/oomguard.toml stays")
    r = run(["apt-get", "purge", "-y", "-q", "oomguard"], timeout=300)
    check(r.returncode == 0, "7. apt-get purge oomguard", (r.stdout + r.stderr)[-500:] if r.returncode else "")
    check(not os.path.exists("/etc/oomguard.toml"), "7. after purge: /etc/oomguard.toml is gone")
    check(not os.path.lexists("/etc/systemd/system/multi-user.target.wants/oomguard.service"),
          "7. after purge: the enablement symlink is gone")
