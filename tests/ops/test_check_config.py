#!/usr/bin/env python3
"""--check-config through the real binary on a fake proc root: the drop-ins it
read, each level resolved for the host, the warning above a quarter of MemTotal,
errors that name the drop-in and its line."""
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from fake_node import GiB, OOMGUARD as BIN, write, write_meminfo  # noqa: E402


class CheckConfig(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="oomguard-check-")
        d = self.tmp.name
        self.proc = os.path.join(d, "proc")
        # 24 GiB node
        write_meminfo(os.path.join(self.proc, "meminfo"), 24 * GiB, 20000000 << 10,
                      free=1000000 << 10)
        self.main = os.path.join(d, "oomguard.toml")
        self.dropins = os.path.join(d, "oomguard.d")
        write(self.main, '[memory]\nmin_available = "5%"\n'
              '[action]\nsysrq_trigger = "' + os.path.join(d, "trigger") + '"\n')
        write(os.path.join(d, "trigger"), "")

    def tearDown(self):
        self.tmp.cleanup()

    def check(self):
        return subprocess.run([BIN, "--check-config", "--proc-root", self.proc, self.main],
                              capture_output=True, text=True, timeout=30)

    def test_files_read_and_levels_resolved(self):
        write(os.path.join(self.dropins, "50-dry-run.toml"), '[action]\nmode = "dry-run"\n')
        r = self.check()
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertIn("# read " + self.main, lines)
        self.assertIn("# read " + os.path.join(self.dropins, "50-dry-run.toml"), lines)
        self.assertIn("# min_available = 5% = 1.2 GiB of MemTotal 24 GiB", lines)
        self.assertIn("# recover_available: unset: 2 x min_available = 2.4 GiB of MemTotal 24 GiB",
                      lines)
        self.assertIn('mode = "dry-run"', lines)  # the drop-in's value is the effective one
        self.assertNotIn("warning: memory.min_available", r.stderr)

    def test_warns_above_a_quarter_of_memtotal(self):
        write(os.path.join(self.dropins, "90-high.toml"), '[memory]\nmin_available = "8GiB"\n')
        r = self.check()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("# min_available = 8.0 GiB = 33% of MemTotal 24 GiB", r.stdout)
        self.assertIn("oomguard: warning: memory.min_available (8.0 GiB) is 33% of MemTotal 24 GiB",
                      r.stderr)

    def test_error_names_the_dropin_and_line(self):
        write(os.path.join(self.dropins, "10-ok.toml"), '[poll]\nmax_interval = "1s"\n')
        write(os.path.join(self.dropins, "20-bad.toml"), '# set by the fleet tool\n[memory]\nwarn_available = 400\n')
        r = self.check()
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn(os.path.join(self.dropins, "20-bad.toml")
                      + ":3: memory.warn_available: a bare number has no unit", r.stderr)

    def test_level_above_memtotal_names_the_dropin(self):
        write(os.path.join(self.dropins, "10-big.toml"), '[memory]\nmin_available = "30GiB"\n')
        r = self.check()
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn(os.path.join(self.dropins, "10-big.toml") + ":2: memory.min_available: (30 GiB)"
                      " is at or above this node's MemTotal", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
