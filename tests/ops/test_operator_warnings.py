#!/usr/bin/env python3
"""Warnings an operator must see at start: another OOM daemon running under the
(injected) proc root, and a kubepods limit of about all of MemTotal (kubelet
reserves nothing for the system). Also the trigger's wording."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from fake_node import MiB, FakeNode, write  # noqa: E402


class OperatorWarnings(unittest.TestCase):
    def setUp(self):
        self.node = FakeNode.small()

    def tearDown(self):
        self.node.close()

    def test_other_oom_daemons_are_named_at_start(self):
        proc = self.node.proc
        write(os.path.join(proc, "4242", "comm"), "earlyoom\n")
        write(os.path.join(proc, "77", "comm"), "systemd-oomd\n")
        write(os.path.join(proc, "78", "comm"), "bash\n")
        og = self.node.start("--log-target=stderr")
        self.assertTrue(og.wait_for("<5>start: ", 10), og.output())
        self.assertTrue(og.wait_for("systemd-oomd (pid 77)", 5), og.output())
        og.stop()
        out = og.output()
        self.assertIn("<4>other-oom-daemon: earlyoom (pid 4242) is running on this node too: ", out)
        self.assertIn("systemctl disable --now earlyoom", out)
        self.assertIn("<4>other-oom-daemon: systemd-oomd (pid 77) is running on this node too: ", out)
        self.assertIn("OOMGUARD_OTHER_DAEMON=earlyoom", out)
        self.assertNotIn("bash", out)

    def test_no_warning_without_them(self):
        og = self.node.start("--log-target=stderr")
        self.assertTrue(og.wait_for("<5>start: ", 10), og.output())
        og.stop()
        self.assertNotIn("other-oom-daemon", og.output())

    def test_kubepods_limit_of_all_memtotal(self):
        # MemTotal 4 GiB; kubelet without kube/system-reserved sets ~capacity.
        write(os.path.join(self.node.cg, "kubepods.slice", "memory.max"),
              "%d\n" % (4090 * MiB))
        og = self.node.start("--log-target=stderr")
        self.assertTrue(og.wait_for("<5>start: ", 10), og.output())
        self.assertTrue(og.wait_for("no-allocatable: ", 5), og.output())
        og.stop()
        self.assertRegex(og.output(),
                         r"<4>no-allocatable: /kubepods.slice is limited to 4.0 GiB, 99% of MemTotal"
                         r" 4.0 GiB: kubelet reserves nothing for the system")

    def test_kubepods_limit_with_reserves_is_fine(self):
        write(os.path.join(self.node.cg, "kubepods.slice", "memory.max"),
              "%d\n" % (3500 * MiB))
        og = self.node.start("--log-target=stderr")
        self.assertTrue(og.wait_for("node allocatable is enforced", 10), og.output())
        og.stop()
        self.assertNotIn("no-allocatable", og.output())

    def test_start_entry_names_the_dropins(self):
        dropin = os.path.join(self.node.d, "oomguard.d", "50-repeat.toml")
        write(dropin, '[action]\nrepeat_after = "5s"\n')
        og = self.node.start("--log-target=stderr")
        self.assertTrue(og.wait_for("<5>start: ", 10), og.output())
        og.stop()
        self.assertIn("OOMGUARD_CONFIG_FILES=%s %s " % (self.node.config, dropin), og.output())

    def test_trigger_wording(self):
        og = self.node.start("--log-target=stderr")
        self.assertTrue(og.wait_for("<5>start: ", 10), og.output())
        self.node.set_available(200 * MiB)
        self.assertTrue(og.wait_for("<4>trigger: ", 10), og.output())
        og.stop()
        out = og.output()
        start = next(l for l in out.splitlines() if l.startswith("<5>start: "))
        self.assertIn(", threshold 350 MiB, action sysrq", start)  # not "350 MiB (350 MiB)"
        self.assertRegex(out, r"<4>trigger: MemAvailable 200 MiB below 350 MiB: asked the kernel OOM"
                              r" killer to kill one task \(sysrq f via [^)]*\); heaviest pod shop/web-1"
                              r" 2.1 GiB \(BestEffort\)")


if __name__ == "__main__":
    unittest.main(verbosity=2)
