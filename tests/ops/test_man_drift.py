#!/usr/bin/env python3
"""The man pages cannot drift from the code: oomguard.toml(5) lists exactly the
keys the config parser has, each with the default the parser gives it (from
--check-config on an empty file); oomguard(8) lists exactly the flags of
--help and every MESSAGE_ID in src/; oomguardctl(1) lists the commands,
options and exit codes of its --help."""
import glob
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from fake_node import GiB, write_meminfo  # noqa: E402

SRC = os.environ.get("OOMGUARD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("OOMGUARD_BIN", "build/src/oomguard")
CTL = os.environ.get("OOMGUARDCTL_BIN", "")


def man(name):
    with open(os.path.join(SRC, "man", name)) as f:
        return f.read()


def unroff(s):
    return s.replace("\\(dq", '"').replace("\\-", "-").replace("\\fR", "").replace("\\fP", "") \
        .replace("\\fI", "").replace("\\fB", "")


def sections(text):
    """{".SH title": body}"""
    out, cur = {}, None
    for line in text.splitlines():
        if line.startswith(".SH "):
            cur = unroff(line[4:].strip().strip('"'))
            out[cur] = []
        elif cur is not None:
            out[cur].append(line)
    return out


def tp_entries(lines):
    """[(header line, [body lines])] of the .TP paragraphs."""
    out = []
    i = 0
    while i < len(lines):
        if lines[i].startswith(".TP") and i + 1 < len(lines):
            head, body = lines[i + 1], []
            i += 2
            while i < len(lines) and not lines[i].startswith(".TP"):
                body.append(lines[i])
                i += 1
            out.append((head, body))
        else:
            i += 1
    return out


def parser_defaults():
    """{section.key: value or 'unset'} from --check-config of an empty file."""
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "empty.toml")
        open(cfg, "w").close()
        write_meminfo(os.path.join(d, "proc", "meminfo"), 16 * GiB, 8000000 << 10)
        r = subprocess.run([BIN, "--check-config", "--allow-insecure-config", "--proc-root",
                            os.path.join(d, "proc"), cfg], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    out, section = {}, None
    for line in r.stdout.splitlines():
        m = re.match(r"^\[(\w+)\]$", line)
        if m:
            section = m.group(1)
            continue
        if section is None:
            continue
        m = re.match(r"^(\w+) = (.*)$", line)
        if m:
            out[section + "." + m.group(1)] = m.group(2).replace(" ", "")
            continue
        m = re.match(r"^# (\w+): unset", line)
        if m:
            out[section + "." + m.group(1)] = "unset"
    return out


def man_keys():
    """{section.key: documented default} from oomguard.toml(5)."""
    out = {}
    for title, lines in sections(man("oomguard.toml.5")).items():
        m = re.match(r"^\[(\w+)\]$", title)
        if not m:
            continue
        for head, body in tp_entries(lines):
            km = re.match(r"^\.B (\w+)$", head)
            if not km:
                continue
            text = "\n".join(body)
            default = None
            if re.search(r"Default: unset", text):
                default = "unset"
            else:
                dm = re.search(r"[Dd]efault\n\.BR? (\S+)", text)
                if dm:
                    default = unroff(dm.group(1))
            out[m.group(1) + "." + km.group(1)] = default
    return out


def help_flags(binary):
    r = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    return r.stdout


class ManDrift(unittest.TestCase):
    def test_config_keys_and_defaults(self):
        parsed, documented = parser_defaults(), man_keys()
        self.assertGreaterEqual(len(parsed), 24, parsed)
        self.assertEqual(sorted(set(parsed) - set(documented)), [], "keys missing in oomguard.toml(5)")
        self.assertEqual(sorted(set(documented) - set(parsed)), [], "keys in oomguard.toml(5) the parser lacks")
        for key, value in parsed.items():
            self.assertEqual(documented[key], value, f"{key}: oomguard.toml(5) says default "
                             f"{documented[key]!r}, the parser {value!r}")

    def test_daemon_flags(self):
        helped = set(re.findall(r"(?m)^\s+(--[a-z][a-z-]*)", help_flags(BIN)))
        opts = sections(man("oomguard.8"))["OPTIONS"]
        documented = set()
        for head, _ in tp_entries(opts):
            documented |= set(re.findall(r"--[a-z][a-z-]*", unroff(head)))
        self.assertGreaterEqual(len(helped), 10, helped)
        self.assertEqual(sorted(helped - documented), [], "flags missing in oomguard(8) OPTIONS")
        self.assertEqual(sorted(documented - helped), [], "flags in oomguard(8) that --help lacks")
        synopsis = unroff("\n".join(sections(man("oomguard.8"))["SYNOPSIS"]))
        for f in helped - {"--help", "--version"}:
            self.assertIn(f, synopsis, f"{f} missing in the SYNOPSIS")

    def test_message_ids(self):
        text = ""
        for p in glob.glob(os.path.join(SRC, "src", "**", "*.[ch]pp"), recursive=True):
            with open(p) as f:
                text += f.read()
        ids = set(re.findall(r'return\s+"([0-9a-f]{32})"', text))
        self.assertGreaterEqual(len(ids), 14)
        page = man("oomguard.8")
        for i in sorted(ids):
            self.assertIn(i, page, "MESSAGE_ID missing in oomguard(8)")

    def test_required_sections(self):
        for s in ("KUBERNETES", "METRICS", "D-BUS", "SEE ALSO"):
            self.assertIn(s, sections(man("oomguard.8")))
        see = unroff("\n".join(sections(man("oomguard.8"))["SEE ALSO"]))
        self.assertIn("earlyoom (1)", see)
        self.assertIn("systemd-oomd (8)", see)

    def test_oomguardctl(self):
        if not CTL or not os.path.exists(CTL):
            self.skipTest("oomguardctl not built (no D-Bus)")
        h = help_flags(CTL)
        page = sections(man("oomguardctl.1"))
        cmds = set(re.findall(r"(?m)^  ([a-z]+)\s", h.split("Commands:")[1].split("Options:")[0]))
        documented = {unroff(head).split()[1] for head, _ in tp_entries(page["COMMANDS"])}
        self.assertEqual(cmds, documented)
        opts = set(re.findall(r"--[a-z][a-z-]*", h.split("Options:")[1].split("Exit status:")[0]))
        mopts = set()
        for head, _ in tp_entries(page["OPTIONS"]):
            mopts |= set(re.findall(r"--[a-z][a-z-]*", unroff(head)))
        self.assertEqual(opts, mopts)
        codes = dict(re.findall(r"(?m)^  (\d)  (.*)$", h.split("Exit status:")[1]))
        mcodes = {unroff(head).split()[1]: unroff(" ".join(body)).strip()
                  for head, body in tp_entries(page["EXIT STATUS"])}
        self.assertEqual(codes, mcodes)


if __name__ == "__main__":
    unittest.main(verbosity=2)
