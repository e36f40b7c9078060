#!/usr/bin/env python3
"""The fleet view with the real programs (issue 15).

The real oomguard runs on a fake proc root (meminfo rewritten in place, PSI
totals, vmstat), a fake cgroup v2 tree with kubelet's systemd-driver pods and
their /var/log/pods names, a fake kmsg file and a trigger file (never the real
sysrq trigger). Its textfile goes to a directory that the real
prometheus-node-exporter reads (--collector.textfile.directory), and the real
prometheus scrapes node_exporter every second and evaluates the shipped alert
rules. The test drives an episode (warning, trigger, recovery) and a kmsg OOM
kill, then asserts through Prometheus' HTTP API what a platform team would see.

Everything listens on 127.0.0.1 (free ports), is bounded in time, stopped by the
test and removed with the temp dir. Exit 77 (meson: SKIP) only when a binary is
missing.
"""
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import fake_node  # noqa: E402
from fake_node import (GiB, MiB, OOMGUARD, SRC, Failure, FakeNode, Proc, check,  # noqa: E402
                       free_port, log, which, wait_until, write)

RULES = os.path.join(SRC, "packaging/prometheus/oomguard.rules.yml")

def http_get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


class Prom:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def query(self, expr):
        url = self.base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        r = json.loads(http_get(url))
        if r.get("status") != "success":
            raise Failure(f"query {expr!r} failed: {r}")
        return r["data"]["result"]

    def value(self, expr):
        """The single sample's value, or None when the result is empty."""
        res = self.query(expr)
        if not res:
            return None
        if len(res) != 1:
            raise Failure(f"{expr!r}: {len(res)} series, expected one: {res}")
        return float(res[0]["value"][1])

    def wait_value(self, expr, want, procs, timeout=20):
        return wait_until(f"{expr} == {want}", lambda: self.value(expr) == want,
                          timeout=timeout, procs=procs)


def main():
    missing = [n for n, p in (("prometheus", which("prometheus")),
                              ("prometheus-node-exporter",
                               which("prometheus-node-exporter", "node_exporter")))
               if not p]
    if missing:
        print("SKIP: not installed: " + ", ".join(missing) +
              " (apt-get install prometheus prometheus-node-exporter; tools/deps.sh --test)")
        return 77
    if not os.access(OOMGUARD, os.X_OK):
        print(f"FAIL: no oomguard binary at {OOMGUARD}")
        return 1
    prometheus = which("prometheus")
    node_exporter = which("prometheus-node-exporter", "node_exporter")

    node = FakeNode(prefix="oomguard-prom-")
    tmp = node.d
    procs = []
    rc = 1
    try:
        ne_port, prom_port = free_port(), free_port()
        ne = Proc("node_exporter", [
            node_exporter, f"--web.listen-address=127.0.0.1:{ne_port}",
            "--collector.disable-defaults", "--collector.textfile",
            f"--collector.textfile.directory={node.textdir}"], tmp)
        procs.append(ne)
        rules = [RULES] if os.path.exists(RULES) else []
        prom_cfg = os.path.join(tmp, "prometheus.yml")
        write(prom_cfg, json.dumps({  # JSON is YAML
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": rules,
            "scrape_configs": [{"job_name": "node", "scrape_interval": "1s",
                                "static_configs": [{"targets": [f"127.0.0.1:{ne_port}"]}]}],
        }))
        pr = Proc("prometheus", [
            prometheus, f"--config.file={prom_cfg}",
            f"--storage.tsdb.path={os.path.join(tmp, 'tsdb')}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            "--storage.tsdb.retention.time=1h", "--log.level=warn"], tmp)
        procs.append(pr)
        prom = Prom(prom_port)
        wait_until("node_exporter serves /metrics",
                   lambda: "node_textfile_scrape_error" in
                   http_get(f"http://127.0.0.1:{ne_port}/metrics"), procs=procs)
        wait_until("prometheus is ready", lambda: http_get(prom.base + "/-/ready"), procs=procs)

        og = node.start("--log-target=stderr")
        procs.append(og)
        # The baseline: the counters exist at 0 before anything happens, so
        # increase() and the alerts see the first trigger.
        prom.wait_value('oomguard_triggers_total{job="node"}', 0, procs)
        prom.wait_value("oomguard_mem_available_bytes", 8 * GiB, procs)
        prom.wait_value("node_textfile_scrape_error", 0, procs)
        build = prom.query("oomguard_build_info")
        check(len(build) == 1 and build[0]["metric"].get("version") and
              build[0]["value"][1] == "1", f"oomguard_build_info{{version=...}} 1: {build}")
        prom.wait_value('oomguard_heaviest_pod_working_set_bytes{namespace="shop",pod="web-1"}',
                        1200 * MiB, procs)

        # Warning, then the trigger.
        node.set_available(int(2.5 * GiB))
        prom.wait_value('oomguard_state{state="warning"}', 1, procs)
        t_before = time.time()
        node.set_available(1 * GiB)
        wait_until("the trigger file got 'f'", lambda: node.f_count() >= 1, procs=procs)
        t_after = time.time()
        prom.wait_value("oomguard_triggers_total", 1, procs)
        prom.wait_value('oomguard_state{state="critical"}', 1, procs)

        # What the kernel says after sysrq 'f' (a node-wide kill of web-1), and
        # later a memcg kill of batch-7 at its own limit.
        web = node.containers[("shop", "web-1", 0)]
        batch = node.containers[("team-b", "batch-7", 0)]
        node.kmsg_append(
            "6,100,1,-;sysrq: Manual OOM execution\n"
            "4,101,2,-;oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,"
            f"mems_allowed=0,global_oom,task_memcg={web},task=java,pid=4242,uid=1000\n"
            "3,102,3,-;Out of memory: Killed process 4242 (java) total-vm:3000000kB, "
            "anon-rss:900000kB, file-rss:4kB, shmem-rss:0kB, UID:1000 pgtables:5000kB "
            "oom_score_adj:936\n"
            "4,103,4,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,"
            f"mems_allowed=0,oom_memcg={batch},task_memcg={batch},task=batch,pid=77,uid=1000\n"
            "3,104,5,-;Memory cgroup out of memory: Killed process 77 (batch) total-vm:1000kB, "
            "anon-rss:500000kB, file-rss:4kB, shmem-rss:0kB, UID:1000 pgtables:50kB "
            "oom_score_adj:1000\n")
        node.set_vmstat(7)
        node.set_pressure(4_250_000, 1_000_500)
        # Recovery.
        node.set_available(6 * GiB)
        prom.wait_value('oomguard_state{state="ok"}', 1, procs)
        prom.wait_value('oomguard_oom_victims_total{namespace="shop",scope="node"}', 1, procs)
        prom.wait_value('oomguard_oom_victims_total{namespace="team-b",scope="memcg"}', 1, procs)
        prom.wait_value("oomguard_vmstat_oom_kills_total", 7, procs)
        # Two more scrapes, so that nothing more is on its way.
        time.sleep(2.5)

        # The file with every family in it (victims included) is lint-clean.
        promtool = which("promtool")
        if promtool:
            with open(os.path.join(node.textdir, "oomguard.prom")) as f:
                text = f.read()
            r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                               text=True)
            check(r.returncode == 0 and not (r.stdout + r.stderr).strip(),
                  f"promtool check metrics is clean on the textfile ({r.stdout}{r.stderr})")
        # The assertions, all through the HTTP API.
        check(prom.value("oomguard_triggers_total") == 1, "oomguard_triggers_total is 1")
        check(prom.value("min_over_time(oomguard_triggers_total[10m])") == 0 and
              prom.value("max_over_time(oomguard_triggers_total[10m])") == 1 and
              prom.value("changes(oomguard_triggers_total[10m])") == 1 and
              prom.value("resets(oomguard_triggers_total[10m])") == 0,
              "the triggers counter went 0 -> 1 exactly once")
        check(node.f_count() == 1, "one 'f' was written")
        check(prom.value("oomguard_warnings_total") == 1, "oomguard_warnings_total is 1")
        ts = prom.value("oomguard_last_trigger_timestamp_seconds")
        check(ts is not None and t_before - 1 <= ts <= t_after + 1,
              f"oomguard_last_trigger_timestamp_seconds {ts} within the trigger's second")
        check(prom.value("oomguard_node_oom_kills_total") == 1, "one node-wide OOM kill")
        check(prom.value("oomguard_memcg_oom_kills_total") == 1, "one memcg OOM kill")
        victims = {(r["metric"].get("namespace", ""), r["metric"]["scope"]): float(r["value"][1])
                   for r in prom.query("oomguard_oom_victims_total")}
        check(victims == {("shop", "node"): 1.0, ("team-b", "memcg"): 1.0},
              f"victims by namespace and scope: {victims}")
        check(prom.value('sum by (namespace) (oomguard_oom_victims_total{namespace="shop"})') == 1,
              "victims sum by namespace")
        top = prom.query("topk(1, oomguard_heaviest_pod_working_set_bytes)")
        check(len(top) == 1 and top[0]["metric"].get("namespace") == "shop" and
              top[0]["metric"].get("pod") == "web-1" and
              float(top[0]["value"][1]) == 1200 * MiB,
              f"the heaviest pod gauge: shop/web-1 at 1200 MiB: {top}")
        pods = {(r["metric"]["namespace"], r["metric"]["pod"]): float(r["value"][1])
                for r in prom.query("oomguard_heaviest_pod_working_set_bytes")}
        check(pods == {("shop", "web-1"): 1200.0 * MiB, ("team-b", "batch-7"): 500.0 * MiB,
                       ("team-a", "db-0"): 200.0 * MiB}, f"all three pods: {pods}")
        check(prom.value("oomguard_pressure_memory_waiting_seconds_total") == 4.25,
              "PSI some total in seconds")
        check(prom.value("oomguard_pressure_memory_stalled_seconds_total") == 1.0005,
              "PSI full total in seconds")
        check(prom.value("oomguard_node_allocatable_enforced") == 1, "allocatable enforced")
        check(prom.value("oomguard_threshold_bytes") == 2 * GiB, "threshold")
        check(prom.value("oomguard_mem_available_bytes") == 6 * GiB, "MemAvailable after recovery")
        check(prom.value("node_textfile_scrape_error") == 0, "node_exporter read the file cleanly")
        mtime = prom.value('node_textfile_mtime_seconds{file=~".*oomguard.prom"}')
        check(mtime is not None and time.time() - mtime < 10,
              f"node_textfile_mtime_seconds is fresh ({mtime})")
        if rules:
            alerts = wait_until(
                "the OomguardTriggered alert is active",
                lambda: [a for a in json.loads(http_get(prom.base + "/api/v1/alerts"))
                         ["data"]["alerts"] if a["labels"]["alertname"] == "OomguardTriggered"],
                procs=procs)
            check(alerts[0]["state"] in ("pending", "firing"), f"alert state {alerts[0]['state']}")
            check(not [a for a in json.loads(http_get(prom.base + "/api/v1/alerts"))["data"]
                       ["alerts"] if a["labels"]["alertname"] in
                       ("OomguardDown", "OomguardTextfileStale", "OomguardNodeAllocatableNotEnforced")],
                  "no down/stale/allocatable alert on a healthy node")
            groups = json.loads(http_get(prom.base + "/api/v1/rules"))["data"]["groups"]
            bad = [r["name"] for g in groups for r in g["rules"] if r.get("health") not in
                   (None, "ok", "unknown")]
            check(not bad, f"every shipped rule evaluates without error ({bad})")

        # oomguard stops by itself on SIGTERM.
        rc_og = og.stop()
        check(rc_og == 0, f"oomguard exited 0 on SIGTERM (log:\n{og.log(10)})")
        rc = 0
        log(f"PASS (wall time {time.monotonic() - fake_node.t0:.1f} s)")
    except Failure as e:
        log("FAIL: " + str(e))
        for p in procs:
            print(f"--- {p.name} log (tail) ---\n{p.log()}")
        tf = os.path.join(tmp, "textfile", "oomguard.prom")
        if os.path.exists(tf):
            with open(tf) as f:
                print("--- oomguard.prom ---\n" + f.read())
    finally:
        for p in reversed(procs):
            p.stop()
        node.close()
    return rc


if __name__ == "__main__":
    sys.exit(main())
