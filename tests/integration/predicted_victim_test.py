#!/usr/bin/env python3
"""The predicted victim and the node audit, end to end (issue 14).

The real oomguard runs on a fake node (tests/support/fake_node.py) whose proc
root also holds tasks with the kernel's published oom_score, oom_score_adj,
comm and cgroup. It asserts, from the daemon's JSON log lines and its metrics
textfile:
  - the audit flags a planted containerd with oom_score_adj 0 whose score beats
    every pod's (two findings, each once, with the fix), not kubelet at -999;
    after the fix and a reload the findings are gone from the metrics;
  - below the warning level the predictor names the BestEffort task with the
    highest oom_score, with its pod and container; the trigger entry carries
    it (OOMGUARD_PREDICTED_*);
  - the victim entry says OOMGUARD_PREDICTION_MATCHED=1 when the kernel killed
    that task, or another task of its container with the memory.oom.group
    (OOMGUARD_PREDICTION_MATCH=oom-group), and 0 when it killed another
    container's task; the counters agree.
Never the real sysrq trigger: a trigger file of the test's own.
"""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from fake_node import GiB, OOMGUARD, Failure, FakeNode, check, wait_until, write  # noqa: E402


class Log:
    """The daemon's stderr, one JSON object per line."""

    def __init__(self, proc):
        self.proc = proc

    def entries(self, event=None):
        out = []
        with open(self.proc.log_path, errors="replace") as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                e = json.loads(line)  # every line must be JSON: a bad one fails the test
                if event is None or e.get("event") == event:
                    out.append(e)
        return out

    def wait(self, what, pred, procs, timeout=20):
        return wait_until(what, lambda: [e for e in self.entries() if pred(e)], timeout=timeout,
                          procs=procs)


def metrics(node):
    path = os.path.join(node.textdir, "oomguard.prom")
    with open(path) as f:
        return f.read()


def kill_report(pid, comm, cgroup, seq):
    return ("6,%d,1,-;sysrq: Manual OOM execution\n" % seq +
            "4,%d,2,-;oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,"
            "mems_allowed=0,global_oom,task_memcg=%s,task=%s,pid=%d,uid=1000\n" % (seq + 1, cgroup, comm, pid) +
            "3,%d,3,-;Out of memory: Killed process %d (%s) total-vm:3000000kB, anon-rss:500000kB, "
            "file-rss:4kB, shmem-rss:0kB, UID:1000 pgtables:5000kB oom_score_adj:1000\n" % (seq + 2, pid, comm))


def main():
    if not os.access(OOMGUARD, os.X_OK):
        print(f"SKIP: no oomguard binary at {OOMGUARD}")
        return 77
    node = FakeNode(prefix="oomg-predict-")
    procs = []
    rc = 1
    try:
        web = node.containers[("shop", "web-1", 0)]
        batch = node.containers[("team-b", "batch-7", 0)]
        node.task(1, "systemd", 0, 0, "/init.scope")
        node.task(300, "kubelet", -999, 1, "/system.slice/kubelet.service")
        node.task(412, "containerd", 0, 1500, "/system.slice/containerd.service")  # planted
        node.task(4242, "java", 936, 900, web)
        node.task(77, "batch", 1000, 1100, batch)
        write(os.path.join(node.proc, "sys", "vm", "panic_on_oom"), "0\n")
        og = node.start("--log-target=stderr", "--log-format=json")
        procs.append(og)
        j = Log(og)

        # The audit, at start.
        j.wait("the audit flags containerd's oom_score_adj",
               lambda e: e.get("event") == "audit-finding" and
               e.get("audit_check") == "critical-oom-score-adj", procs)
        j.wait("the audit flags containerd outranking the pods",
               lambda e: e.get("event") == "audit-finding" and
               e.get("audit_check") == "critical-outranks-pods", procs)
        found = j.entries("audit-finding")
        check(all("containerd" in e["audit_subject"] for e in found),
              f"only containerd is flagged, not kubelet at -999: {[e['audit_subject'] for e in found]}")
        check(all("OOMScoreAdjust=-999" in e["audit_fix"] and "containerd.service" in e["audit_fix"]
                  for e in found), "each finding says the fix (OOMScoreAdjust=-999 for containerd.service)")
        check(all(e.get("message_id") for e in found), "audit entries have a MESSAGE_ID")
        wait_until("the audit findings in the metrics",
                   lambda: 'oomguard_audit_findings{check="critical-oom-score-adj"} 1' in metrics(node),
                   procs=procs)

        # The operator fixes containerd and reloads: no new findings, none active.
        node.task(412, "containerd", -999, 1, "/system.slice/containerd.service")
        og.p.send_signal(signal.SIGHUP)
        wait_until("no audit finding in the metrics after the fix",
                   lambda: "oomguard_audit_findings{" not in metrics(node) and
                   "oomguard_triggers_total 0" in metrics(node), procs=procs)
        check(len(j.entries("audit-finding")) == 2, "each finding was logged once")

        # Below the warning level the predictor names batch-7's task (score 1100).
        node.set_available(int(2.5 * GiB))
        wait_until("the predicted victim in the metrics",
                   lambda: 'oomguard_predicted_victim_oom_score{comm="batch",namespace="team-b",'
                   'pod="batch-7",container="c0"} 1100' in metrics(node), procs=procs)
        node.set_available(1 * GiB)
        trig = j.wait("the trigger entry", lambda e: e.get("event") == "trigger", procs)[0]
        check(trig.get("predicted_pid") == "77" and trig.get("predicted_comm") == "batch" and
              trig.get("predicted_oom_score") == "1100" and trig.get("predicted_cgroup") == batch and
              trig.get("predicted_pod_namespace") == "team-b" and
              trig.get("predicted_pod_name") == "batch-7" and trig.get("predicted_container_name") == "c0",
              f"the trigger entry names the predicted victim: {trig}")
        check("likely victim: pid 77 (batch) of pod team-b/batch-7" in trig["msg"],
              f"and says it in its message: {trig['msg']}")

        # The kernel kills the predicted task: matched.
        node.kmsg_append(kill_report(77, "batch", batch, 100))
        v = j.wait("the victim entry", lambda e: e.get("event") == "victim", procs)[0]
        check(v.get("victim_pid") == "77" and v.get("prediction_matched") == "1" and
              v.get("predicted_pid") == "77",
              f"the victim entry says the prediction matched: {v}")

        # A second episode where the kernel kills another task: not matched.
        node.set_available(6 * GiB)
        wait_until("recovered", lambda: 'oomguard_state{state="ok"} 1' in metrics(node), procs=procs)
        node.set_available(int(2.5 * GiB))
        time.sleep(1.5)  # a fresh scan in the warning band
        node.set_available(1 * GiB)
        wait_until("the second trigger", lambda: len(j.entries("trigger")) >= 2, procs=procs)
        node.kmsg_append(kill_report(4242, "java", web, 200))
        node.set_available(6 * GiB)  # the kill frees memory: the victim entry follows
        v2 = j.wait("the second victim entry",
                    lambda e: e.get("event") == "victim" and e.get("victim_pid") == "4242", procs)[0]
        check(v2.get("prediction_matched") == "0" and v2.get("predicted_pid") == "77",
              f"a different victim is not a match: {v2}")
        wait_until("the prediction counters",
                   lambda: "oomguard_predictions_matched_total 1" in metrics(node) and
                   "oomguard_predictions_missed_total 1" in metrics(node), procs=procs)

        # A third episode: the kernel picks another task of the predicted task's
        # container and kills the whole memory.oom.group, the predicted one too.
        node.set_available(int(2.5 * GiB))
        time.sleep(1.5)
        node.set_available(1 * GiB)
        wait_until("the third trigger", lambda: len(j.entries("trigger")) >= 3, procs=procs)
        killed = ("Out of memory: Killed process %d (%s) total-vm:1000kB, anon-rss:100000kB, "
                  "file-rss:4kB, shmem-rss:0kB, UID:1000 pgtables:50kB oom_score_adj:1000\n")
        node.kmsg_append("6,300,1,-;sysrq: Manual OOM execution\n"
                         "4,301,2,-;oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,"
                         f"mems_allowed=0,global_oom,task_memcg={batch},task=helper,pid=78,uid=1000\n"
                         "3,302,3,-;" + killed % (78, "helper") +
                         f"6,303,4,-;Tasks in {batch} are going to be killed due to memory.oom.group set\n"
                         "3,304,5,-;" + killed % (78, "helper") + "3,305,6,-;" + killed % (77, "batch"))
        node.set_available(6 * GiB)
        v3 = j.wait("the third victim entry",
                    lambda e: e.get("event") == "victim" and e.get("victim_pid") == "78", procs)[0]
        check(v3.get("prediction_matched") == "1" and v3.get("prediction_match") == "oom-group" and
              v3.get("killed_tasks") == "2",
              f"the predicted task died with its container's memory.oom.group: a match: {v3}")
        rc = 0
        print("PASS")
    except Failure as e:
        print(f"FAIL: {e}")
        for p in procs:
            print(f"--- {p.name} log (tail) ---\n{p.log()}")
    finally:
        for p in reversed(procs):
            p.stop()
        node.close()
    return rc


if __name__ == "__main__":
    sys.exit(main())
