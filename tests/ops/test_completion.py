#!/usr/bin/env python3
"""bash and zsh completion: the scripts load, complete what --help lists (no
more, no less), and complete the values of --log-target/--log-format and
oomguardctl's commands. zsh's are run for real: an interactive `zsh -f` on a
pty, compinit with fpath at packaging/completion, a typed TAB."""
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

SRC = os.environ.get("OOMGUARD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("OOMGUARD_BIN", "build/src/oomguard")
CTL = os.environ.get("OOMGUARDCTL_BIN", "")


def complete(script, func, words):
    """COMPREPLY for the command line `words` (the last one is being completed)."""
    path = os.path.join(SRC, "packaging", "completion", script)
    quoted = " ".join("'%s'" % w for w in words)
    cmd = (f"source '{path}'; COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; "
           f"{func}; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", cmd], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    return set(filter(None, r.stdout.splitlines()))


@unittest.skipUnless(shutil.which("bash"), "no bash")
class Completion(unittest.TestCase):
    def test_oomguard_flags_match_help(self):
        h = subprocess.run([BIN, "--help"], capture_output=True, text=True).stdout
        flags = set(re.findall(r"(?m)^\s+(--[a-z][a-z-]*)", h))
        self.assertEqual(complete("oomguard", "_oomguard", ["oomguard", "--"]), flags)
        self.assertEqual(complete("oomguard", "_oomguard", ["oomguard", "--log-format", ""]),
                         {"plain", "logfmt", "json"})
        self.assertEqual(complete("oomguard", "_oomguard", ["oomguard", "--log-target", "j"]),
                         {"journal"})

    def test_oomguardctl_matches_help(self):
        if not CTL or not os.path.exists(CTL):
            self.skipTest("oomguardctl not built")
        h = subprocess.run([CTL, "--help"], capture_output=True, text=True).stdout
        cmds = set(re.findall(r"(?m)^  ([a-z]+)\s", h.split("Commands:")[1].split("Options:")[0]))
        opts = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", h.split("Options:")[1].split("The system bus")[0]))
        got = complete("oomguardctl", "_oomguardctl", ["oomguardctl", ""])
        self.assertEqual(got, cmds | opts)
        self.assertEqual(complete("oomguardctl", "_oomguardctl", ["oomguardctl", "re"]), {"reload"})
        # After a command only options.
        self.assertEqual(complete("oomguardctl", "_oomguardctl", ["oomguardctl", "top", ""]), opts)


def help_flags():
    h = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=30).stdout
    return set(re.findall(r"(?m)^\s+(--[a-z][a-z-]*)", h))


def ctl_help():
    """oomguardctl's (commands, options) from its --help."""
    h = subprocess.run([CTL, "--help"], capture_output=True, text=True, timeout=30).stdout
    cmds = set(re.findall(r"(?m)^  ([a-z]+)\s", h.split("Commands:")[1].split("Options:")[0]))
    opts = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", h.split("Options:")[1].split("The system bus")[0]))
    return cmds, opts


def zsh_specs(name):
    """The _arguments specs of packaging/completion/NAME as zsh itself reads them
    (quoting and expansion done by zsh: _arguments is a stub that prints them),
    and the oomguardctl command names (its array cmds) when the file defines them."""
    path = os.path.join(SRC, "packaging", "completion", name)
    script = ("_arguments() { print -rl -- ${@/#/SPEC:}; [[ ${(t)cmds} == array* ]] && "
              "print -rl -- ${${cmds%%:*}/#/CMD:}; return 1 }; "
              "fpath=('%s' $fpath); autoload -Uz %s; %s; true" % (os.path.dirname(path), name, name))
    r = subprocess.run(["zsh", "-f", "-c", script], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    specs = [l[5:] for l in lines if l.startswith("SPEC:")]
    cmds = {l[4:] for l in lines if l.startswith("CMD:")}
    return specs, cmds


def spec_option(spec):
    """The option a spec is for ('(-n)--count=[...]:...' -> '--count'), None for
    positional ones ('1:command:...') and _arguments' own flags (-s, -S)."""
    m = re.match(r"(?:\([^)]*\))?\*?(--?[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)[-+=]?(?:\[|:|$)", spec)
    return m.group(1) if m else None


def spec_values(specs, option):
    """The fixed values ('(a b c)' action) the spec of OPTION completes."""
    for s in specs:
        if spec_option(s) == option:
            m = re.search(r":\(([^()]*)\)$", s)
            return set(m.group(1).split()) if m else None
    return None


# Sourced in the interactive zsh: records every candidate that completion offers
# (the compadd calls that add matches, not the -O/-A/-D ones that only compute),
# and writes a marker when the completion is over.
ZSH_SETUP = r"""
fpath=("$ZC_DIR" $fpath)
autoload -Uz compinit && compinit -u -d "$ZC_TMP/zcompdump"
zstyle ':completion:*' menu no
compadd() {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return; fi
  local -a __hits
  builtin compadd -A __hits "$@"
  (( $#__hits )) && print -rl -- $__hits >> "$ZC_TMP/cands"
  builtin compadd "$@"
}
zc_done() { print done > "$ZC_TMP/done" }
comppostfuncs=(zc_done)
bindkey '^I' complete-word
print ready > "$ZC_TMP/ready"
"""


def zsh_complete(line, cwd=None, timeout=20):
    """The candidates zsh offers when LINE is typed followed by TAB, in an
    interactive `zsh -f` on a pty (the working directory CWD, else an empty one)."""
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "setup.zsh"), "w") as f:
            f.write(ZSH_SETUP)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp, "TERM": "xterm",
               "LANG": "C", "ZC_DIR": os.path.join(SRC, "packaging", "completion"), "ZC_TMP": tmp}
        work = cwd or os.path.join(tmp, "empty")
        os.makedirs(work, exist_ok=True)
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.chdir(work)
                os.execvpe("zsh", ["zsh", "-f", "-i"], env)
            finally:
                os._exit(127)
        deadline = time.monotonic() + timeout
        screen = b""

        def wait_for(marker):
            nonlocal screen
            while not os.path.exists(os.path.join(tmp, marker)):
                if time.monotonic() > deadline:
                    raise AssertionError(f"zsh: no {marker} within {timeout}s; screen: {screen[-2000:]!r}")
                if select.select([fd], [], [], 0.1)[0]:
                    try:
                        screen += os.read(fd, 65536)
                    except OSError:
                        raise AssertionError(f"zsh exited; screen: {screen[-2000:]!r}")

        try:
            os.write(fd, f"source '{tmp}/setup.zsh'\n".encode())
            wait_for("ready")
            os.write(fd, line.encode() + b"\t")
            wait_for("done")
            cands = os.path.join(tmp, "cands")
            if not os.path.exists(cands):
                return set()
            with open(cands) as f:
                return set(filter(None, f.read().splitlines()))
        finally:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(fd)


@unittest.skipUnless(shutil.which("zsh"), "no zsh (tools/deps.sh --test installs it)")
class ZshCompletion(unittest.TestCase):
    def test_syntax(self):
        for name in ("_oomguard", "_oomguardctl"):
            path = os.path.join(SRC, "packaging", "completion", name)
            r = subprocess.run(["zsh", "-n", path], capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, f"{name}: {r.stderr}")
            with open(path) as f:
                self.assertEqual(f.readline().split(), ["#compdef", name[1:]])

    def test_oomguard_specs_match_help(self):
        specs, _ = zsh_specs("_oomguard")
        self.assertEqual({spec_option(s) for s in specs} - {None, "-s", "-S"}, help_flags())
        # The same values as the bash script.
        for opt in ("--log-format", "--log-target"):
            self.assertEqual(spec_values(specs, opt), complete("oomguard", "_oomguard", ["oomguard", opt, ""]),
                             opt)

    def test_oomguardctl_specs_match_help(self):
        if not CTL or not os.path.exists(CTL):
            self.skipTest("oomguardctl not built")
        cmds, opts = ctl_help()
        specs, spec_cmds = zsh_specs("_oomguardctl")
        self.assertEqual({spec_option(s) for s in specs} - {None, "-s", "-S"}, opts)
        self.assertEqual(spec_cmds, cmds)
        for opt in ("-n", "--count"):
            self.assertEqual(spec_values(specs, opt),
                             complete("oomguardctl", "_oomguardctl", ["oomguardctl", opt, ""]), opt)

    def test_oomguard_completes(self):
        self.assertEqual(zsh_complete("oomguard --log-format "), {"plain", "logfmt", "json"})
        self.assertEqual(zsh_complete("oomguard --log-target j"), {"journal"})
        self.assertEqual(zsh_complete("oomguard --"), help_flags())
        with tempfile.TemporaryDirectory() as d:
            for f in ("a.toml", "b.txt", "c.toml.bak"):
                open(os.path.join(d, f), "w").close()
            os.mkdir(os.path.join(d, "conf.d"))
            # As the bash script: *.toml files and directories; directories only.
            self.assertEqual(zsh_complete("oomguard --config ", cwd=d), {"a.toml", "conf.d"})
            self.assertEqual(zsh_complete("oomguard --check-config ", cwd=d), {"a.toml", "conf.d"})
            self.assertEqual(zsh_complete("oomguard --proc-root ", cwd=d), {"conf.d"})

    def test_oomguardctl_completes(self):
        if not CTL or not os.path.exists(CTL):
            self.skipTest("oomguardctl not built")
        cmds, opts = ctl_help()
        self.assertEqual(zsh_complete("oomguardctl "), cmds)
        self.assertEqual(zsh_complete("oomguardctl re"), {"reload"})
        self.assertEqual(zsh_complete("oomguardctl -"), opts)
        # After a command only options, as the bash script.
        self.assertEqual(zsh_complete("oomguardctl top "), opts)
        self.assertEqual(zsh_complete("oomguardctl top -n "), {"3", "5", "10", "20", "50", "100"})


if __name__ == "__main__":
    unittest.main(verbosity=2)
