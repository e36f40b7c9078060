#!/usr/bin/env python3
"""--log-format=logfmt|json: every stderr line of a real daemon run (start, the
no-allocatable warning, a trigger with its heaviest-pod table, recovery, a
reload, a bad reload, stop) is one parseable line with ts, level, event and msg,
and no <N> prefix; the plain default is unchanged but labels Event::Info lines
by priority."""
import json
import os
import re
import signal
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from fake_node import MiB, FakeNode  # noqa: E402

LOGFMT_PAIR = re.compile(r'([a-z_][a-z0-9_]*)=("(?:[^"\\]|\\.)*"|[^\s"=\\]+)(?: |$)')


def parse_logfmt(line):
    """Strict: the whole line must be key=value pairs; returns the dict."""
    out, pos = {}, 0
    while pos < len(line):
        m = LOGFMT_PAIR.match(line, pos)
        if not m:
            raise ValueError("not logfmt at column %d: %r" % (pos, line))
        k, v = m.group(1), m.group(2)
        if v.startswith('"'):
            v = json.loads(v)  # the same escapes as a JSON string
        if k in out:
            raise ValueError("key %s repeated: %r" % (k, line))
        out[k] = v
        pos = m.end()
    return out


def run_daemon(fmt):
    def ev(name):
        return '"event":"%s"' % name if fmt == "json" else "event=%s " % name
    node = FakeNode.small()
    try:
        og = node.start("--log-target=stderr", "--log-format=" + fmt)
        assert og.wait_for(ev("start"), 10), og.output()
        node.set_available(200 * MiB)
        assert og.wait_for(ev("trigger"), 10), og.output()
        node.set_available(2048 * MiB)
        assert og.wait_for(ev("recovered"), 10), og.output()
        og.p.send_signal(signal.SIGHUP)
        assert og.wait_for(ev("reload"), 10), og.output()
        with open(node.config, "a") as f:
            f.write("[bogus]\n")
        og.p.send_signal(signal.SIGHUP)
        assert og.wait_for(ev("reload-failed"), 10), og.output()
        og.stop()
        return og.output()
    finally:
        node.close()


class LogFormats(unittest.TestCase):
    def check_entries(self, entries, text):
        events = [e["event"] for e in entries]
        for want in ("start", "trigger", "recovered", "reload", "reload-failed", "stop"):
            self.assertIn(want, events, text)
        for e in entries:
            for k in ("ts", "level", "event", "msg"):
                self.assertIn(k, e, text)
            self.assertRegex(e["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIn(e["level"], ("error", "warning", "notice", "info", "debug"))
            self.assertNotIn("\n", e["msg"])
        trig = next(e for e in entries if e["event"] == "trigger")
        self.assertEqual(trig["level"], "warning")
        self.assertEqual(trig["message_id"], "70f9fe7ab100420db4a8c0f2db5f4ab2")
        self.assertEqual(trig["mem_available_bytes"], str(200 * MiB))
        self.assertIn("shop/web-1", trig["msg"])
        # The top-5 table is detail, on the same line.
        self.assertIn("WORKING SET", trig.get("detail", ""), trig)
        self.assertIn("\n", trig["detail"])

    def test_json(self):
        text = run_daemon("json")
        lines = text.splitlines()
        self.assertGreater(len(lines), 5, text)
        entries = []
        for line in lines:
            self.assertFalse(line.startswith("<"), line)
            entries.append(json.loads(line))  # raises on any line that is not one JSON object
            self.assertIsInstance(entries[-1], dict)
        self.check_entries(entries, text)

    def test_logfmt(self):
        text = run_daemon("logfmt")
        lines = text.splitlines()
        self.assertGreater(len(lines), 5, text)
        entries = []
        for line in lines:
            self.assertFalse(line.startswith("<"), line)
            entries.append(parse_logfmt(line))
        self.check_entries(entries, text)

    def test_unknown_format_is_refused(self):
        node = FakeNode.small()
        try:
            og = node.start("--log-format=xml")
            og.p.wait(10)
            self.assertEqual(og.p.returncode, 2)
            self.assertIn('--log-format: unknown format "xml" (plain, logfmt, json)', og.output())
        finally:
            node.close()

    def test_plain_default_labels_info_entries_by_priority(self):
        node = FakeNode.small()
        try:
            # Entries without an event of their own: PSI missing under the proc
            # root (LOG_INFO), no kmsg (LOG_WARNING).
            with open(node.config) as f:
                cfg = f.read().replace("psi = false", "psi = true").replace(
                    '/kmsg"', '/no-kmsg"')
            with open(node.config, "w") as f:
                f.write(cfg)
            og = node.start("--log-target=stderr")
            self.assertTrue(og.wait_for("<5>start: ", 10), og.output())
            og.stop()
            out = og.output()
            self.assertIn("<6>info: PSI trigger unavailable", out)
            self.assertIn("<4>warning: cannot read the kernel's OOM reports", out)
            self.assertNotRegex(out, r"<[0-5]>info: ")  # only LOG_INFO entries say "info"
        finally:
            node.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
