"""The node lab's README scenario (issue 16): the operator quick-start of the
README, run as written on the lab's Debian 12 node, its transcript in the
report. The build lines (build-essential, mk-build-deps, dpkg-buildpackage)
need the source tree and minutes: the lab's .deb is the one they build on the
host, so `apt install ../oomguard_*.deb` installs that one. Everything else
runs verbatim, in order: status, oomguardctl, --check-config, the dry-run
drop-in, the journal query, and the undo. Runs inside the VM; `d` is lab.py
(the lab's helpers)."""
import glob
import os
import re

import lab as d

BUILD = ("apt-get install -y --no-install-recommends build-essential", "mk-build-deps", "dpkg-buildpackage")


def quick_start_commands(text):
    """The '# ' lines of the console blocks under '## Quick start', then the
    inline `rm /etc/oomguard.d/...` undo command, in README order."""
    sec = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    out = []
    for block in re.findall(r"```console\n(.*?)```", sec, re.S):
        for line in block.splitlines():
            if line.startswith("# "):
                out.append(re.sub(r"\s+#\s.*$", "", line[2:]).strip())  # drop trailing comments
    out += re.findall(r"`(rm /etc/oomguard\.d/[^`]+)`", sec)
    return out


def scenario13():
    text = open(os.path.join(d.LAB, "README.md")).read()
    cmds = quick_start_commands(text)
    if not d.check(len(cmds) >= 8, "13. the README's quick start has its commands", f"{len(cmds)}: {cmds}"):
        return
    debs = sorted(glob.glob(f"{d.LAB}/oomguard_*.deb"))
    transcript, bad = [], []
    for cmd in cmds:
        if cmd.startswith(BUILD):
            transcript.append(f"# {cmd}    [not run in the lab: the host built the .deb]")
            continue
        run = cmd
        if cmd.startswith("apt install ../oomguard_"):
            # The README's relative path, from where dpkg-buildpackage left it.
            run = "cd /root && " + re.sub(r"\.\./oomguard_\S+\.deb", debs[0], cmd)
        r = d.run(["bash", "-c", run], timeout=300)
        out = (r.stdout + r.stderr).rstrip()
        lines = out.splitlines()
        shown = lines[:14] + (["   [...]"] if len(lines) > 14 else [])
        transcript.append(f"# {cmd}" + (f"    [run as: {run}]" if run != cmd else ""))
        transcript += ["  " + l[:160] for l in shown]
        # journalctl -g exits 1 when nothing matched (no trigger in a dry-run minute).
        ok = r.returncode == 0 or (cmd.startswith("journalctl") and r.returncode == 1)
        if not ok:
            bad.append(f"{cmd}: exit {r.returncode}: {out[-300:]}")
        if cmd == "systemctl reload oomguard":
            ok = d.wait_for(lambda: "dry-run" in d.show("StatusText"), 10)
            d.check(ok, "13. after the README's dry-run drop-in and reload, the status says dry-run",
                    d.show("StatusText"))
        if cmd.startswith("rm /etc/oomguard.d/"):
            ok = d.wait_for(lambda: "dry-run" not in d.show("StatusText"), 10)
            d.check(ok and d.show("ActiveState") == "active",
                    "13. the README's undo: back from dry-run, still running", d.show("StatusText"))
    d.note("13. transcript of the README quick start on the lab node:")
    for line in transcript:
        d.note("13. | " + line)
    d.check(not bad, "13. every quick-start command of the README ran", "; ".join(bad)[:600] or
            f"{len([c for c in cmds if not c.startswith(BUILD)])} run, "
            f"{len([c for c in cmds if c.startswith(BUILD)])} build lines left to the host")
