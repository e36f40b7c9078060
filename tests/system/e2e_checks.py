"""The checks of systemd_e2e.py, one function a numbered step (0 install,
1 running, 2 start entry, 3 D-Bus, 4 reload, 5 watchdog, 6 real trigger,
7 remove/purge), on a booted container from e2e_harness."""
import os
import re
import time

from e2e_harness import (check, cursor, journal, mem_available_mib, note, report, seconds, set_key, show,
                         wait_entry, wait_for, write_config)

MSG_START = "82abdace5af84deda3af22f8cd452b58"
MSG_TRIGGER = "70f9fe7ab100420db4a8c0f2db5f4ab2"
MSG_TRIGGER_FAILED = "0eef8c0416e845b2afda5c72a0bc1ff1"
MSG_RECOVERED = "67853c0e748b4bc19a42ade6c0873e44"
MSG_RELOAD = "ba1220f0b89b445f8b5aea9f4e08a18a"
MSG_RELOAD_FAILED = "742e5bd663af4d27bb421f8489c9bbd2"

TEST_DIR = "/var/lib/oomguard-test"           # inside the container
TRIGGER = TEST_DIR + "/trigger"
HOG_MIB = 2048                                 # real memory allocated for check 6
HOG_MARGIN_MIB = 1024                          # threshold = MemAvailable - this
RECOVER_ABOVE_MIB = 128                        # recovery level = threshold + this


def check_install(c, deb_name):
    r = c.run(["apt-get", "install", "-y", "-q", f"/root/{deb_name}"], timeout=300)
    if not check(r.returncode == 0, f"apt-get install ./{deb_name}",
                 "" if r.returncode == 0 else (r.stdout + r.stderr)[-1500:]):
        if "Depends" in r.stdout + r.stderr:
            note("a Depends is missing from the cached rootfs: add it to packages= in "
                 "tests/system/make-rootfs.sh (apt installs the local .deb without a download)")
        return False
    check(c.run(["systemctl", "is-enabled", "oomguard"]).stdout.strip() == "enabled",
          "postinst enabled oomguard.service")
    v = c.run(["systemd-analyze", "verify", "--man=no", "oomguard.service"])
    out = (v.stdout + v.stderr).strip()
    check(v.returncode == 0 and not out, "systemd-analyze verify of the installed unit is clean", out[-800:])
    s = c.run(["systemd-analyze", "security", "--no-pager", "oomguard.service"])
    m = re.search(r"Overall exposure level for oomguard.service: ([\d.]+)", s.stdout)
    check(m is not None and float(m.group(1)) <= 2.0,
          "systemd-analyze security of the running unit <= 2.0", m.group(1) if m else s.stderr[-300:])
    return True


def check_running(c):
    active = wait_for(lambda: c.run(["systemctl", "is-active", "oomguard"]).stdout.strip() == "active", 15)
    if not check(active, "1. systemctl is-active oomguard: active",
                 "" if active else c.run(["systemctl", "status", "oomguard", "--no-pager"]).stdout[-1500:]):
        return False
    st = c.run(["systemctl", "status", "oomguard", "--no-pager"]).stdout
    m = re.search(r'Status: "(MemAvailable [^"]+ / threshold [^"]+)"', st)
    check(m is not None, "1. systemctl status shows the STATUS line", m.group(1) if m else st[-800:])
    pid = show(c, "MainPID")
    r = c.run(["grep", "VmLck", f"/proc/{pid}/status"])
    locked = re.search(r"VmLck:\s+(\d+) kB", r.stdout)
    check(locked is not None and int(locked.group(1)) > 0, "daemon memory is locked (mlockall)",
          r.stdout.strip() or r.stderr.strip())
    return True


def check_start_entry(c):
    entries = journal(c, None, MSG_START)
    if not check(bool(entries), f"2. journal has the start entry MESSAGE_ID={MSG_START}"):
        return
    e = entries[-1]
    want = {"OOMGUARD_THRESHOLD_BYTES": str(350 << 20), "OOMGUARD_MODE": "sysrq",
            "OOMGUARD_CONFIG": "/etc/oomguard.toml", "OOMGUARD_DRY_RUN": "0",
            "OOMGUARD_EVENT": "start", "SYSLOG_IDENTIFIER": "oomguard",
            "_SYSTEMD_UNIT": "oomguard.service"}
    bad = {k: e.get(k) for k, v in want.items() if e.get(k) != v}
    check(not bad, "2. start entry fields " + ", ".join(f"{k}={v}" for k, v in want.items()),
          f"got {bad}" if bad else "")
    avail = e.get("OOMGUARD_MEM_AVAILABLE_BYTES", "")
    total = e.get("OOMGUARD_MEM_TOTAL_BYTES", "")
    check(avail.isdigit() and total.isdigit() and 0 < int(avail) <= int(total),
          "2. start entry has OOMGUARD_MEM_AVAILABLE_BYTES <= OOMGUARD_MEM_TOTAL_BYTES", f"{avail} / {total}")
    check(bool(e.get("OOMGUARD_VERSION")), "2. start entry has OOMGUARD_VERSION", e.get("OOMGUARD_VERSION", ""))


def check_dbus(c, threshold_bytes):
    if not os.path.exists(c.path("/usr/bin/oomguardctl")):
        report("SKIP", "3. busctl introspect org.oomguard1 /org/oomguard1", "D-Bus API not built yet")
        report("SKIP", "3. oomguardctl status", "D-Bus API not built yet")
        return
    r = c.run(["busctl", "introspect", "--no-pager", "org.oomguard1", "/org/oomguard1"])
    check(r.returncode == 0 and "org.oomguard1.Manager" in r.stdout,
          "3. busctl introspect org.oomguard1 /org/oomguard1 shows org.oomguard1.Manager", r.stderr.strip()[-500:])
    r = c.run(["busctl", "get-property", "org.oomguard1", "/org/oomguard1", "org.oomguard1.Manager", "Threshold"])
    check(r.stdout.strip() == f"t {threshold_bytes}", "3. Threshold property matches the config",
          (r.stdout + r.stderr).strip())
    r = c.run(["oomguardctl", "status"])
    check(r.returncode == 0 and r.stdout.strip() != "", "3. oomguardctl status answers (root)",
          (r.stdout + r.stderr).strip()[-500:])
    r = c.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "oomguardctl", "status"])
    check(r.returncode == 0 and r.stdout.strip() != "", "3. oomguardctl status answers a non-root user",
          (r.stdout + r.stderr).strip()[-500:])


def check_reload(c, shipped):
    pid = show(c, "MainPID")
    bad = set_key(shipped, "memory", "min_available", "350")  # a bare number: no unit
    cur = cursor(c)
    write_config(c, bad)
    r = c.run(["systemctl", "reload", "oomguard"])
    check(r.returncode == 0, "4. systemctl reload with an invalid value", r.stderr.strip())
    e = wait_entry(c, cur, MSG_RELOAD_FAILED)
    text = (e or {}).get("MESSAGE", "") + " " + (e or {}).get("OOMGUARD_CONFIG_ERROR", "")
    check(e is not None and re.search(r"oomguard\.toml:\d+: memory\.min_available", text) is not None,
          "4. journal reload-failed entry names the key and line", text.strip()[:300])
    check(c.run(["systemctl", "is-active", "oomguard"]).stdout.strip() == "active" and show(c, "MainPID") == pid,
          "4. service stays active with the same MainPID")
    status = show(c, "StatusText")
    check("threshold 350 MiB" in status, "4. the old config stays in force (STATUS threshold 350 MiB)", status)

    cur = cursor(c)
    write_config(c, set_key(shipped, "memory", "min_available", '"512MiB"'))
    c.run(["systemctl", "reload", "oomguard"])
    e = wait_entry(c, cur, MSG_RELOAD)
    check(e is not None, "4. valid reload: journal reload entry", (e or {}).get("MESSAGE", ""))
    applied = wait_for(lambda: "threshold 512 MiB" in show(c, "StatusText"), 5)
    check(applied and show(c, "MainPID") == pid, "4. valid reload applied without a restart (STATUS threshold 512 MiB)",
          show(c, "StatusText"))


def check_watchdog(c):
    wd = seconds(show(c, "WatchdogUSec"))
    restart = seconds(show(c, "RestartUSec"))
    if not check(wd > 0, "5. WatchdogSec is set", show(c, "WatchdogUSec")):
        return
    pid = show(c, "MainPID")
    if not check(pid.isdigit() and int(pid) > 1, "5. the daemon has a MainPID to stop", pid):
        return
    restarts = int(show(c, "NRestarts") or 0)
    cur = cursor(c)
    t0 = time.monotonic()
    c.run(["kill", "-STOP", pid])

    def restarted():
        st = c.run(["systemctl", "show", "-P", "MainPID,ActiveState", "oomguard"]).stdout.split()
        return len(st) == 2 and st[0] not in ("0", pid) and st[1] == "active"

    back = wait_for(restarted, wd + restart + 30)
    elapsed = time.monotonic() - t0
    bound = wd + restart + 5  # SIGABRT at WatchdogSec, restart after RestartSec, slack for the exit
    check(back, "5. SIGSTOPped daemon was killed and restarted", f"{elapsed:.1f} s")
    entries = journal(c, cur)
    wd_msg = [e for e in entries if "atchdog timeout" in str(e.get("MESSAGE", ""))]
    check(bool(wd_msg), "5. systemd logged the watchdog timeout", wd_msg[0]["MESSAGE"] if wd_msg else "")
    check(back and elapsed <= bound,
          f"5. restarted within WatchdogSec {wd:g} s + RestartSec {restart:g} s (+5 s slack)",
          f"measured {elapsed:.1f} s")
    check(int(show(c, "NRestarts") or 0) == restarts + 1, "5. NRestarts went up by one")


def check_trigger(c, shipped):
    avail = mem_available_mib()
    if avail < HOG_MIB + 2048:
        report("FAIL", "6. real trigger", f"only {avail} MiB available; need {HOG_MIB + 2048} MiB to test safely")
        return
    threshold = avail - HOG_MARGIN_MIB
    cfg = shipped
    cfg = set_key(cfg, "memory", "min_available", f'"{threshold}MiB"')
    cfg = set_key(cfg, "memory", "recover_available", f'"{threshold + RECOVER_ABOVE_MIB}MiB"')
    cfg = set_key(cfg, "action", "sysrq_trigger", f'"{TRIGGER}"')
    cfg = set_key(cfg, "action", "repeat_after", '"1s"')
    c.run(["install", "-m", "0600", "/dev/null", TRIGGER])
    cur = cursor(c)
    write_config(c, cfg)
    c.run(["systemctl", "reload", "oomguard"])
    e = wait_entry(c, cur, MSG_RELOAD)
    if not check(e is not None, f"6. threshold set to {threshold} MiB ({HOG_MARGIN_MIB} MiB below MemAvailable)",
                 show(c, "StatusText")):
        return
    time.sleep(1.0)
    before = open(c.path(TRIGGER)).read()
    if not check(before == "", "6. nothing written to the trigger before the allocation",
                 "" if before == "" else
                 f"{before!r}: MemAvailable fell by {HOG_MARGIN_MIB} MiB on its own (busy machine)"):
        return
    cur = cursor(c)
    t0 = time.monotonic()
    # MemoryAccounting: on this hybrid host the container's memory controller is
    # cgroup v1, where systemd gives a unit its own memory cgroup only when asked.
    r = c.run(["systemd-run", "--unit=oomguard-e2e-memhog", "--collect", "--quiet",
               "-p", "MemoryAccounting=yes",
               "/usr/local/bin/oomguard-memhog", str(HOG_MIB)])
    try:
        check(r.returncode == 0, f"6. started a {HOG_MIB} MiB allocation in the container (oomguard-e2e-memhog.service)",
              r.stderr.strip())
        written = wait_for(lambda: open(c.path(TRIGGER)).read(), 30, 0.05)
        elapsed = time.monotonic() - t0
        check(bool(written) and set(written) == {"f"}, "6. 'f' written to the trigger file",
              f"{written!r} {elapsed:.2f} s after the allocation started")
        e = wait_entry(c, cur, MSG_TRIGGER, 5)
        if check(e is not None, f"6. journal has the trigger entry MESSAGE_ID={MSG_TRIGGER}",
                 (e or {}).get("MESSAGE", "")):
            note(e.get("MESSAGE", ""))
            a, t = e.get("OOMGUARD_MEM_AVAILABLE_BYTES", ""), e.get("OOMGUARD_THRESHOLD_BYTES", "")
            check(a.isdigit() and t == str(threshold << 20) and int(a) < int(t),
                  "6. trigger entry: OOMGUARD_MEM_AVAILABLE_BYTES < OOMGUARD_THRESHOLD_BYTES (the configured one)",
                  f"{a} < {t}")
            check(e.get("OOMGUARD_ACTION") == "sysrq" and e.get("OOMGUARD_DRY_RUN") == "0",
                  "6. trigger entry: action sysrq, not dry-run")
            cg = e.get("OOMGUARD_CGROUP") or ""
            if not cg and "no cgroups to rank" in e.get("MESSAGE", ""):
                # nspawn on a hybrid host mounts the v1 memory hierarchy read-only in
                # the container, so its systemd gives no unit a memory cgroup: there
                # is truly nothing to rank. tests/cgroup covers naming on real cgroups.
                report("SKIP", "6. trigger entry names the heaviest cgroup",
                       "the container's v1 memory hierarchy has no unit cgroups (read-only under nspawn); "
                       "the daemon said so: 'no cgroups to rank'")
            else:
                check("memhog" in cg or "system.slice" in cg,
                      "6. trigger entry names the heaviest cgroup (the allocation's)",
                      cg or "no OOMGUARD_CGROUP field: " + e.get("MESSAGE", "")[:300])
        failed = journal(c, cur, MSG_TRIGGER_FAILED)
        check(not failed, "6. no trigger-failed entries", failed[0].get("MESSAGE", "") if failed else "")
    finally:
        c.run(["systemctl", "stop", "oomguard-e2e-memhog"])
    # The recovery level is HOG_MARGIN_MIB - RECOVER_ABOVE_MIB (896 MiB) below
    # MemAvailable at the start: room for what the shared host takes meanwhile.
    # MemAvailable can take seconds to come back (14 s measured once). Up to 60 s;
    # a failure says where MemAvailable stands.
    e = wait_entry(c, cur, MSG_RECOVERED, 60)
    check(e is not None, "6. recovery logged once the allocation is gone",
          (e or {}).get("MESSAGE", "") if e else
          f"MemAvailable now {mem_available_mib()} MiB, recovery level {threshold + RECOVER_ABOVE_MIB} MiB, "
          f"{avail} MiB at the start")


def check_remove(c):
    r = c.run(["apt-get", "remove", "-y", "-q", "oomguard"], timeout=300)
    check(r.returncode == 0, "7. apt-get remove oomguard", (r.stdout + r.stderr)[-500:] if r.returncode else "")
    state = c.run(["systemctl", "is-active", "oomguard"]).stdout.strip()
    procs = c.run(["pgrep", "-x", "oomguard"]).stdout.strip()
    check(state in ("inactive", "unknown") and not procs, "7. apt remove stopped the service",
          f"is-active {state}, pids {procs or '-'}")
    check(os.path.exists(c.path("/etc/oomguard.toml")), "7. apt remove keeps the conffile /etc/oomguard.toml")
    r = c.run(["apt-get", "purge", "-y", "-q", "oomguard"], timeout=300)
    check(r.returncode == 0, "7. apt-get purge oomguard", (r.stdout + r.stderr)[-500:] if r.returncode else "")
    check(not os.path.exists(c.path("/etc/oomguard.toml")), "7. apt purge removed /etc/oomguard.toml")
    check(not os.path.lexists(c.path("/etc/systemd/system/multi-user.target.wants/oomguard.service")),
          "7. apt purge removed the enablement symlink")
