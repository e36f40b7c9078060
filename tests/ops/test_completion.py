#!/usr/bin/env python3
"""bash completion: the scripts load, complete what --help lists (no more, no
less), and complete the values of --log-target/--log-format and oomguardctl's
commands."""
import os
import re
import shutil
import subprocess
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


if __name__ == "__main__":
    unittest.main(verbosity=2)
