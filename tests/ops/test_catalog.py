#!/usr/bin/env python3
"""The journal message catalog (packaging/journal/oomguard.catalog) has one
well-formed entry for every MESSAGE_ID in src/, none for IDs that no longer
exist, and its @FIELD@ substitutions name fields the daemon sends."""
import glob
import os
import re
import unittest

SRC = os.environ.get("OOMGUARD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
CATALOG = os.path.join(SRC, "packaging", "journal", "oomguard.catalog")


def source_text():
    text = ""
    for p in glob.glob(os.path.join(SRC, "src", "**", "*.[ch]pp"), recursive=True):
        with open(p) as f:
            text += f.read()
    return text


def message_ids(text):
    # message_id(): case Event::X: return "<32 hex digits>";
    return set(re.findall(r'return\s+"([0-9a-f]{32})"', text))


def parse_catalog():
    entries, cur = {}, None
    with open(CATALOG) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.startswith("-- "):
                mid = line[3:].strip()
                if mid in entries:
                    raise AssertionError("line %d: %s twice" % (n, mid))
                cur = entries[mid] = {"headers": {}, "body": [], "line": n}
            elif cur is None:
                if line and not line.startswith("#"):
                    raise AssertionError("line %d: text before the first entry" % n)
            elif not cur["body"] and re.match(r"^[A-Z][A-Za-z-]+: ", line) and line.find(": ") > 0 \
                    and not any(b for b in cur["body"]):
                k, v = line.split(": ", 1)
                cur["headers"][k] = v
            else:
                cur["body"].append(line)
    return entries


class Catalog(unittest.TestCase):
    def test_every_message_id_has_an_entry(self):
        text = source_text()
        ids = message_ids(text)
        self.assertGreaterEqual(len(ids), 14, ids)
        entries = parse_catalog()
        self.assertEqual(sorted(ids - set(entries)), [], "MESSAGE_IDs without a catalog entry")
        self.assertEqual(sorted(set(entries) - ids), [], "catalog entries for no MESSAGE_ID")

    def test_entries_are_well_formed(self):
        text = source_text()
        for mid, e in parse_catalog().items():
            self.assertRegex(mid, r"^[0-9a-f]{32}$")
            self.assertIn("Subject", e["headers"], mid)
            self.assertEqual(e["headers"].get("Defined-By"), "oomguard", mid)
            self.assertTrue(e["headers"].get("Documentation", "").startswith("man:"), mid)
            body = "\n".join(e["body"]).strip()
            self.assertGreater(len(body), 40, mid)
            for field in re.findall(r"@([A-Z_]+)@", body):
                self.assertIn('"%s"' % field, text, "%s: @%s@ is no field the daemon sends" % (mid, field))

    def test_journalctl_reads_it(self):
        import shutil
        import subprocess
        import tempfile
        if not shutil.which("journalctl"):
            self.skipTest("no journalctl")
        with tempfile.TemporaryDirectory() as root:
            os.makedirs(os.path.join(root, "usr/lib/systemd/catalog"))
            os.makedirs(os.path.join(root, "var/lib/systemd/catalog"))
            shutil.copy(CATALOG, os.path.join(root, "usr/lib/systemd/catalog"))
            subprocess.run(["journalctl", "--root=" + root, "--update-catalog"], check=True,
                           capture_output=True, timeout=30)
            out = subprocess.run(["journalctl", "--root=" + root, "--list-catalog"], check=True,
                                 capture_output=True, text=True, timeout=30).stdout
        listed = {l.split()[0] for l in out.splitlines() if l.strip()}
        self.assertEqual(listed, set(parse_catalog()), out)

    def test_installed_by_meson(self):
        with open(os.path.join(SRC, "packaging", "meson.build")) as f:
            self.assertIn("journal/oomguard.catalog", f.read())


if __name__ == "__main__":
    unittest.main(verbosity=2)
