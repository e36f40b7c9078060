#!/usr/bin/env python3
"""End-to-end test of the oomguard .deb in a real, booted systemd (issue 5).

PID 1 on the development machine and in CI is not systemd, so this boots a
Debian 12 container with systemd-nspawn and checks what an operator would:

  0. `apt-get install ./oomguard_*.deb` installs it, enables and starts it;
     systemd-analyze verify/security on the installed unit
  1. is-active, and the STATUS line in `systemctl status`
  2. the start entry in `journalctl -u oomguard -o json` (MESSAGE_ID, fields)
  3. D-Bus: busctl introspect, oomguardctl status (when the package has them)
  4. reload with an invalid value keeps the old config; a valid one applies
  5. watchdog: SIGSTOP the daemon, systemd kills and restarts it
  6. a real trigger: threshold just below MemAvailable, real memory allocated in
     the container, 'f' written to a trigger file, journal trigger entry
  7. apt remove stops the service, apt purge removes the conffile

The rootfs (debootstrap, ~90 s) is cached in /var/cache/oomguard-tests and
every run starts from a clean overlay on top of it. The .deb is built with
dpkg-buildpackage and cached per source hash (shared with the deb test).
The container never touches the real /proc/sysrq-trigger: nspawn keeps it
read-only, the test drop-in makes it inaccessible to the service, and the test
points [action] sysrq_trigger at a file.

Usage: systemd_e2e.py SOURCE_ROOT BUILD_ROOT MEMHOG_BINARY
"""
# Split by subject: e2e_harness.py (reporting, the container, helpers on it),
# e2e_checks.py (the numbered checks); this file builds, boots and runs them.
import os
import re
import shutil
import signal
import sys
import time

# Run as root from the source tree: leave no __pycache__ there (pkg-source.sh
# hashes and copies the untracked files for the package build).
sys.dont_write_bytecode = True

from e2e_checks import (TEST_DIR, check_dbus, check_install, check_reload, check_remove, check_running,
                        check_start_entry, check_trigger, check_watchdog)
from e2e_harness import Container, Interrupted, check, clean_stale_runs, host, note, on_signal, report, results

SRC, BUILD, MEMHOG = sys.argv[1], sys.argv[2], sys.argv[3]
HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("OOMGUARD_TEST_CACHE", "/var/cache/oomguard-tests")

DROPIN = """\
# Written by tests/system/systemd_e2e.py before the package is installed.
[Service]
# The test's trigger file ([action] sysrq_trigger) lives here.
ReadWritePaths=%s
# The real trigger stays out of reach of the service during the test: nspawn
# mounts it read-only in the container, but ProtectProc= gives the service a
# fresh procfs without that mount. "-": kernels without sysrq lack the file.
InaccessiblePaths=-/proc/sysrq-trigger
""" % TEST_DIR


def main():
    t_start = time.monotonic()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if os.geteuid() != 0:
        print("SKIP: the systemd-nspawn end-to-end test needs root (CI runs as root)")
        return 77
    missing = [t for t in ("systemd-nspawn", "nsenter", "debootstrap", "dpkg-buildpackage", "dh")
               if shutil.which(t) is None]
    if missing:
        print(f"FAIL: missing tools {missing}: run tools/deps.sh --test")
        return 1

    t = time.monotonic()
    r = host([os.path.join(HERE, "build-deb.sh"), SRC, os.path.join(BUILD, "pkg-cache")], timeout=1200)
    if not check(r.returncode == 0, "built the .deb with dpkg-buildpackage",
                 f"{time.monotonic() - t:.0f} s" if r.returncode == 0 else r.stderr[-2000:]):
        return 1
    sys.stderr.write(r.stderr)
    deb_dir = r.stdout.strip()
    deb = next(f for f in sorted(os.listdir(deb_dir)) if re.match(r"oomguard_.*\.deb$", f))

    t = time.monotonic()
    r = host([os.path.join(HERE, "make-rootfs.sh"), CACHE], timeout=900)
    if not check(r.returncode == 0, "Debian 12 rootfs with systemd (cached, or debootstrap on the first run)",
                 f"{time.monotonic() - t:.0f} s" if r.returncode == 0 else r.stderr[-2000:]):
        return 1
    sys.stderr.write(r.stderr)
    rootfs = r.stdout.strip()

    clean_stale_runs()
    c = Container(rootfs)
    try:
        c.prepare()
        shutil.copy(os.path.join(deb_dir, deb), c.path("/root/"))
        shutil.copy(MEMHOG, c.path("/usr/local/bin/oomguard-memhog"))
        os.makedirs(c.path(TEST_DIR), exist_ok=True)
        os.makedirs(c.path("/etc/systemd/system/oomguard.service.d"), exist_ok=True)
        with open(c.path("/etc/systemd/system/oomguard.service.d/50-e2e-test.conf"), "w") as f:
            f.write(DROPIN)

        t = time.monotonic()
        state = c.boot(os.path.join(c.scratch, "console.log"))
        if not check(state in ("running", "degraded"), "container booted systemd",
                     f"{state}, {time.monotonic() - t:.1f} s"):
            return 1
        if state == "degraded":
            note(c.run(["systemctl", "--failed", "--no-pager"]).stdout)

        if not check_install(c, deb):
            return 1
        shipped = open(c.path("/etc/oomguard.toml")).read()
        if not check_running(c):
            return 1
        check_start_entry(c)
        check_dbus(c, 350 << 20)
        check_reload(c, shipped)
        check_watchdog(c)
        check_trigger(c, shipped)
        check_remove(c)
    except Interrupted as e:
        report("FAIL", "interrupted", str(e))
    except Exception as e:  # a broken step must still tear the container down
        report("FAIL", "unexpected error", f"{type(e).__name__}: {e}")
        raise
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the teardown must finish
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if results["FAIL"]:
            log = os.path.join(c.scratch, "console.log")
            if os.path.exists(log):
                note("container console (last lines):\n" + open(log, errors="replace").read()[-2000:])
            if c.pid1:
                try:
                    note("journal of oomguard.service:\n" +
                         c.run(["journalctl", "-u", "oomguard", "--no-pager", "-n", "40"], timeout=20).stdout)
                except Exception:
                    pass
        c.teardown()
        print(f"e2e: {results['PASS']} passed, {results['FAIL']} failed, {results['SKIP']} skipped; "
              f"wall time {time.monotonic() - t_start:.0f} s", flush=True)
    return 1 if results["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
