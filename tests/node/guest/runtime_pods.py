"""The node lab's runtime scenarios on real pods (issue 13; see runtime.py):
8 (kubepods found, pods and containers named as the runtime knows them, the
real sysrq trigger, memory.oom.group from the CRI), 10 (kill-cgroup on the
runtime's containers) and 11 (names without kubelet's symlinks). Runs inside
the VM."""
import glob
import json
import os
import re
import shutil
import time

import lab as d
from runtime import capacity, check_names, cid_of, cri, heaviest_check, make_pods, note_daemon_state, note_entry, \
    restart_daemon, stat_ws, top_rows, wait_ready


def record_layout(pods):
    """What containerd really made: the paths, scope names, files, symlinks,
    for the fixture comparison in the report."""
    p = pods[0]
    c = p.containers[0]
    d.note(f"layout: pod cgroup {p.cgroup} ; container cgroup {p.scope(c.id)}")
    kids = sorted(os.listdir(d.CG + p.cgroup))
    d.note("layout: pod slice entries (dirs): " + " ".join(k for k in kids if os.path.isdir(f"{d.CG}{p.cgroup}/{k}")))
    d.note(f"layout: log dir {p.log_directory}: " + " ".join(
        sorted(os.path.relpath(x, p.log_directory) for x in glob.glob(p.log_directory + "/**", recursive=True)
               if os.path.isfile(x))))
    links = sorted(os.listdir("/var/log/containers"))
    d.note("layout: /var/log/containers: " + " ".join(f"{x} -> {os.readlink('/var/log/containers/' + x)}"
                                                     for x in links[:3]))
    for cid, what in ((c.id, "container"), (p.sandbox_id, "sandbox")):
        bundles = glob.glob(f"/run/containerd/io.containerd.runtime.v2.task/k8s.io/{cid}/config.json")
        if bundles:
            spec = json.load(open(bundles[0]))
            d.note(f"layout: {what} bundle {bundles[0]}: cgroupsPath {spec.get('linux', {}).get('cgroupsPath')}")
            for k, v in sorted(spec.get("annotations", {}).items()):
                if k.startswith("io.kubernetes.cri"):
                    d.note(f"layout:   annotation {k}={v[:200]}")
        else:
            d.note(f"layout: no bundle config.json for the {what} {cid[:12]}")
    parts = p.cgroup.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        rel = "/".join(parts[:i])
        d.note(f"layout: memory.oom.group of /{rel}: {d.read(f'{d.CG}/{rel}/memory.oom.group').strip()}, "
               f"memory.max {d.read(f'{d.CG}/{rel}/memory.max').strip()}")
    for s in kids:
        if s.startswith("cri-containerd-"):
            f = f"{d.CG}{p.cgroup}/{s}"
            pids = d.read(f"{f}/cgroup.procs").split()
            d.note(f"layout: {s[:27]}...: oom.group {d.read(f + '/memory.oom.group').strip()}, memory.max "
                   f"{d.read(f + '/memory.max').strip()}, tasks {len(pids)}, comm "
                   f"{d.read(f'/proc/{pids[0]}/comm').strip() if pids else '-'}, /proc/pid/cgroup "
                   f"{d.read(f'/proc/{pids[0]}/cgroup').strip() if pids else '-'}")
    line = d.read(c.log(p)).splitlines()[:1]
    d.note(f"layout: CRI log line format: {line[0][:120] if line else '(empty)'}")
    d.note("layout: oom_score_adj of the sandbox (pause) process: " + ", ".join(
        d.read(f"/proc/{pid}/oom_score_adj").strip() for pid in
        [int(x) for s in kids if s.startswith("cri-containerd-") and s[15:-6] == p.sandbox_id
         for x in d.read(f"{d.CG}{p.cgroup}/{s}/cgroup.procs").split()]))


def scenario8():
    mod, client = cri()
    cap = capacity()
    daemon = d.main_pid()
    g, b, be = make_pods(mod, client)
    pods = [g, b, be]
    try:
        if os.path.exists(d.CG + "/kubepods.slice"):
            # Left (empty) by the earlier scenarios' hand-made pods: gone, and
            # the daemon started without it, so that it appears after start.
            d.run(["systemctl", "stop", "kubepods.slice"], timeout=60)
            restart_daemon()
            d.wait_for(lambda: d.show("ActiveState") == "active", 30)
            daemon = d.main_pid()
        had_kubepods = os.path.exists(d.CG + "/kubepods.slice")
        t = time.monotonic()
        for p in pods:
            p.start(cap, only=None if p is not be else ["helper"])
        d.fig("cri_pods_started_s", f"{time.monotonic() - t:.1f}")
        ready = all(wait_ready(p, c.name) for p in pods for c in p.containers if c.id)
        d.check(ready and not had_kubepods,
                "8. three pods via RunPodSandbox/CreateContainer/StartContainer (kubepods.slice made by them, "
                "after the daemon started)", f"ready {ready}, kubepods.slice before: {had_kubepods}")
        record_layout(pods)
        # The runtime's truth for every container: CRI ContainerStatus.
        truth = {}
        for p in pods:
            for c in p.containers:
                if not c.id:
                    continue
                s = p.status(c.name)
                truth[c.id] = (s.labels.get("io.kubernetes.pod.namespace"), s.labels.get("io.kubernetes.pod.name"),
                               s.metadata.name, p.qos)
        adj_ok = all(d.read(f"/proc/{pid}/oom_score_adj").strip() == want
                     for p, want in ((g, "-997"), (be, "1000")) for c in p.containers if c.id for pid in p.pids(c.name))
        bad = d.read(b.path("nginx", "memory.max")).strip()
        og = {c.name: d.read(p.path(c.name, "memory.oom.group")).strip() for p in pods for c in p.containers if c.id}
        d.check(adj_ok and bad == str(512 << 20) and set(og.values()) == {"1"},
                "8. runc applied kubelet's settings: oom_score_adj -997/1000 by QoS, memory.max of the limit, "
                "memory.oom.group=1", f"nginx memory.max {bad}, oom.group {og}")
        d.fig("burstable_oom_score_adj", d.read(f"/proc/{b.pids('nginx')[0]}/oom_score_adj").strip())

        def listed():
            rows = top_rows() or []
            have = {r.get("cgroup") for r in rows if not r.get("container")}
            return rows if all(p.cgroup in have for p in pods) else None
        rows = d.wait_for(listed, 30, 1.0) or top_rows()
        check_names(rows, truth, "8. kubepods.slice appeared after the daemon started: oomguardctl top names the pods "
                                 "and the heaviest pod's containers as CRI ContainerStatus does (namespace, pod, "
                                 "container, id, QoS)", pods)
        heaviest_check(rows, pods, "8. (appeared after start)")
        # At start, with the tree present.
        restart_daemon()
        d.wait_for(lambda: d.show("ActiveState") == "active", 30)
        rows = d.wait_for(listed, 30, 1.0) or top_rows()
        if not rows:
            note_daemon_state("8. after the restart")
        check_names(rows, truth, "8. after a restart with kubepods present: the same names and ids", pods)
        heaviest_check(rows, pods, "8. (at start)")
        daemon = d.main_pid()

        # The real trigger: the leaker container (BestEffort) eats the VM.
        avail = d.meminfo()["MemAvailable"] >> 20
        leaker = be.container("leaker")
        leaker.args = ["--anon", str(avail + 256), "--rate", "150", "--procs", "3", "--hold", "120"]
        kmsg = d.Kmsg()
        cur = d.cursor()
        be.start_container(leaker, cap)
        truth[leaker.id] = ("batch", be.name, "leaker", "BestEffort")
        started = be.wait_log("leaker", r"stdout F started", 30)
        pids = be.pids("leaker")
        d.check(started and len(pids) == 3 and d.read(be.path("leaker", "memory.oom.group")).strip() == "1",
                "8. the leaker container: 3 tasks, memory.oom.group=1 (CRI unified), BestEffort",
                f"pids {pids}, MemAvailable {avail} MiB")
        gone = d.wait_for(lambda: not d.read(be.path("leaker", "cgroup.procs")).split(), 90, 0.05)
        time.sleep(2)
        recs = kmsg.since(kmsg.mark)
        texts = [t for _, _, t in recs]
        d.check(any("sysrq: Manual OOM execution" in t for t in texts), "8. the kernel logged 'sysrq: Manual OOM "
                "execution'", next((t for t in texts if "sysrq" in t), "no sysrq line"))
        k = d.killed(recs)
        victims = {pid for pid, _, _ in k}
        d.check(gone and victims and victims <= set(pids) and all(not d.alive(p) for p in pids),
                "8. the kernel killed the leaker container's tasks, all of them, and nothing else",
                f"killed {sorted(k)}, container {pids}")
        others = [pid for p in pods for c in p.containers if c.id and c is not leaker for pid in p.pids(c.name)]
        d.check(others and all(d.alive(x) for x in others),
                "8. the pod's helper container and the other pods' containers live on (oom.group is per container)",
                f"{len(others)} tasks alive")
        for t in texts:
            if "sysrq" in t or "oom-kill:" in t or "Killed process" in t or "Memory cgroup" in t or "oom_group" in t \
                    or "memory.oom.group" in t:
                d.note(f"kernel: {t[:300]}")
        trig = d.journal(cur, d.MSG["trigger"])
        vics = d.wait_for(lambda: d.journal(cur, d.MSG["victim"]), 20)
        time.sleep(1)
        vics = d.journal(cur, d.MSG["victim"])
        for e in trig[:1] + vics:
            note_entry(e)
        if d.check(trig, "8. oomguard's trigger entry is in the journal"):
            e = trig[0]
            got = {k2: e.get(k2) for k2 in ("OOMGUARD_POD_NAMESPACE", "OOMGUARD_POD_NAME", "OOMGUARD_CONTAINER_NAME",
                                             "OOMGUARD_CONTAINER_ID", "OOMGUARD_QOS", "OOMGUARD_POD_UID")}
            want = {"OOMGUARD_POD_NAMESPACE": "batch", "OOMGUARD_POD_NAME": be.name,
                    "OOMGUARD_CONTAINER_NAME": "leaker", "OOMGUARD_CONTAINER_ID": leaker.id,
                    "OOMGUARD_QOS": "BestEffort", "OOMGUARD_POD_UID": be.uid}
            # The kernel's kill races the reads after the trigger: the report keeps the
            # peaks of the one from just before (OOMGUARD_RANKING_PEAKS says how many).
            d.check(got == want, "8. the trigger entry names the runtime's pod, container, container id and QoS",
                    (f"got {got}" if got != want else f"{be.namespace}/{be.name} leaker {leaker.id[:12]}") +
                    f"; OOMGUARD_RANKING_PEAKS={e.get('OOMGUARD_RANKING_PEAKS', '0')}")
        if d.check(vics, "8. oomguard's victim entry (from /dev/kmsg) is in the journal", f"{len(vics)} entries"):
            v = vics[0]
            got = {k2: v.get(k2) for k2 in ("OOMGUARD_POD_NAMESPACE", "OOMGUARD_POD_NAME", "OOMGUARD_CONTAINER_NAME",
                                             "OOMGUARD_CONTAINER_ID", "OOMGUARD_QOS")}
            d.check(got == {"OOMGUARD_POD_NAMESPACE": "batch", "OOMGUARD_POD_NAME": be.name,
                            "OOMGUARD_CONTAINER_NAME": "leaker", "OOMGUARD_CONTAINER_ID": leaker.id,
                            "OOMGUARD_QOS": "BestEffort"},
                    "8. the victim entry names the kernel's victim as the runtime knows it", f"got {got}")
            d.check(v.get("OOMGUARD_PREDICTION_MATCHED") == "1",
                    "14. the kernel killed the predicted task (or its memory.oom.group with it)",
                    f"MATCHED={v.get('OOMGUARD_PREDICTION_MATCHED')} by {v.get('OOMGUARD_PREDICTION_MATCH')}, "
                    f"predicted {v.get('OOMGUARD_PREDICTED_PID')}, victim {v.get('OOMGUARD_VICTIM_PID')}")
            tasks = v.get("OOMGUARD_KILLED_TASKS")
            regained = int(v.get("OOMGUARD_REGAINED_BYTES", 0) or 0)
            d.check(len(vics) == 1 and tasks == str(len(pids)) and regained > (avail >> 1) << 20,
                    "8. memory.oom.group=1: one victim entry for the whole container, all its tasks, the memory back",
                    f"{len(vics)} entries, OOMGUARD_KILLED_TASKS {tasks} of {len(pids)}, regained {regained >> 20} MiB "
                    f"(MemAvailable was {avail} MiB before the leak)")
        st = d.wait_for(lambda: (lambda s: s if s.state == mod.api.CONTAINER_EXITED else None)(be.status("leaker")), 20)
        # containerd handles the task's OOM event after its exit event, or loses
        # it (containerd/containerd#8180, #8893; fixed by #12714, after 1.6): a
        # late one still turns the reason into OOMKilled, so wait a little.
        if st is not None and st.reason != "OOMKilled":
            st = d.wait_for(lambda: (lambda s: s if s.reason == "OOMKilled" else None)(be.status("leaker")), 5) or st
        what = "8. CRI ContainerStatus of the leaker: EXITED, reason OOMKilled (what kubelet reports)"
        got = f"state {st.state if st else '?'}, reason {st.reason if st else '?'}, exit {st.exit_code if st else '?'}"
        if st is not None and st.reason == "Error" and st.exit_code == 137:
            d.report("SKIP", what, got + ": containerd 1.6 lost or reordered its TaskOOM event (containerd#8893, "
                     "fixed by #12714); the kernel's kill of this container is checked above")
        else:
            d.check(st is not None and st.reason == "OOMKilled", what, got)
        d.check(d.main_pid() == daemon and d.show("ActiveState") == "active", "8. oomguard kept running (same pid)")
    finally:
        for p in pods:
            p.stop()


def adj_of(pod, name):
    pids = pod.pids(name)
    return d.read(f"/proc/{pids[0]}/oom_score_adj").strip() if pids else "?"


def scenario10():
    """kill-cgroup against containers the runtime made."""
    mod, client = cri()
    cap = capacity()
    shipped = d.config_text()
    C = mod.Container
    Mi = 1 << 20
    avail = d.meminfo()["MemAvailable"] >> 20
    big = max(200, min(700, avail - 900))
    crit = mod.Pod(client, "prod", "critical-etcd-0", "Guaranteed", [
        C("etcd", ["--anon", str(big), "--hold", "600"], request=(big + 64) * Mi, limit=(big + 64) * Mi)])
    be = mod.Pod(client, "batch", "crawler-8f5", "BestEffort", [
        C("sidecar", ["--anon", "16", "--hold", "600"]), C("crawl", [])])
    decoy = "oomguard-lab-decoy.service"
    try:
        d.write_config(d.set_key(shipped, "action", "mode", '"kill-cgroup"'))
        for p in (crit, be):
            p.start(cap, only=None if p is not be else ["sidecar"])
        wait_ready(crit, "etcd", 120)
        wait_ready(be, "sidecar", 60)
        # Outside kubepods, the most killable task on the node: never touched.
        d.run(["systemd-run", f"--unit={decoy}", "-p", "MemoryAccounting=yes", d.HOG, "--oom-score-adj", "1000",
               "--anon", "48", "--hold", "300"])
        restart_daemon()
        d.wait_for(lambda: d.show("ActiveState") == "active", 30)
        decoy_pid = int(d.show("MainPID", decoy) or 0)
        daemon = d.main_pid()
        cur = d.cursor()
        kmsg = d.Kmsg()
        avail = d.meminfo()["MemAvailable"] >> 20
        crawl = be.container("crawl")
        crawl.args = ["--anon", str(avail + 256), "--rate", "150", "--procs", "3", "--hold", "120"]
        be.start_container(crawl, cap)
        be.wait_log("crawl", r"stdout F started", 30)
        pids = be.pids("crawl")
        gone = d.wait_for(lambda: not d.read(be.path("crawl", "cgroup.procs")).split(), 90, 0.05)
        time.sleep(1.5)
        trig = d.journal(cur, d.MSG["trigger"])
        text = d.msg(trig[0]).splitlines()[0] if trig else ""
        for e in trig[:1]:
            note_entry(e)
        m = re.search(r"killed container (\S+) of pod (\S+) .* via (cgroup\.kill|SIGKILL to cgroup\.procs)", text)
        d.check(trig and trig[0].get("OOMGUARD_ACTION") == "kill-cgroup" and m and m.group(1) == "crawl"
                and m.group(2) == f"batch/{be.name}" and trig[0].get("OOMGUARD_CONTAINER_ID") == crawl.id,
                "10. kill-cgroup chose the runtime's BestEffort container crawl (its CRI id)",
                text[:300] or "no trigger entry")
        d.check(gone and pids and all(not d.alive(p) for p in pids), "10. the container died (all 3 tasks)",
                f"pids {pids}")
        sidecar = be.pids("sidecar")
        sandbox = [int(x) for x in d.read(f"{d.CG}{be.scope(be.sandbox_id)}/cgroup.procs").split()]
        d.check(sidecar and sandbox and all(d.alive(p) for p in sidecar + sandbox),
                "10. its pod's other container (sidecar) and the sandbox (pause) live on",
                f"sidecar {sidecar}, pause {sandbox}")
        ws = stat_ws(crit.path("etcd"))
        d.check(crit.pids("etcd") and all(d.alive(p) for p in crit.pids("etcd")),
                "10. the Guaranteed container (oom_score_adj -997 from the CRI) was never chosen, though the heaviest",
                f"etcd working set {ws >> 20} MiB, adj {adj_of(crit, 'etcd')}")
        k = d.killed(kmsg.since(kmsg.mark))
        d.check(decoy_pid and d.alive(decoy_pid) and not k,
                "10. nothing outside kubepods was touched (an oom_score_adj 1000 service lives; no kernel OOM kill)",
                f"decoy pid {decoy_pid}, kernel kills {k}")
        st = d.wait_for(lambda: (lambda s: s if s.state == mod.api.CONTAINER_EXITED else None)(be.status("crawl")), 20)
        d.note(f"10. CRI ContainerStatus of crawl after cgroup.kill: state {st.state if st else '?'}, "
               f"exit {st.exit_code if st else '?'}, reason {st.reason if st else '?'}")
        d.check(d.main_pid() == daemon, "10. oomguard kept running")
    finally:
        d.run(["systemctl", "stop", decoy], timeout=30)
        be.stop()
        crit.stop()
        d.write_config(shipped)
        restart_daemon()
        d.wait_for(lambda: d.show("ActiveState") == "active", 30)


def scenario11():
    """Names with kubelet's symlinks missing or stale: from the runtime's state
    (containerd's bundle config.json annotations)."""
    mod, client = cri()
    cap = capacity()
    C = mod.Container
    nolink = mod.Pod(client, "team-a", "nolink-6f7d", "BestEffort", [
        C("app", ["--anon", "40", "--hold", "600"]), C("log-shipper", ["--anon", "8", "--hold", "600"])])
    # (one pod at a time below: top lists the containers of the heaviest pod only)
    stale = mod.Pod(client, "team-b", "stale-0", "Burstable", [
        C("worker", ["--anon", "56", "--hold", "600"], request=32 << 20, limit=256 << 20),
        C("metrics-agent", ["--anon", "8", "--hold", "600"], request=16 << 20, limit=64 << 20)])
    # Two containers each: with one, oomguard names a lone unnamed container
    # from the pod's only log directory, which proves nothing about the runtime.
    moved = None

    def listed(p):
        # The pod listed and its containers named (names may take a listing or two).
        rows = top_rows() or []
        named = {cid_of(r.get("cgroup")) for r in rows if r.get("container") and r.get("container") in
                 {c.name for c in p.containers}}
        return rows if any(r.get("cgroup") == p.cgroup and not r.get("container") for r in rows) and \
            all(c.id in named for c in p.containers) else None
    try:
        # No link at all (a kubelet that does not make them, or a runtime
        # started outside kubelet's log tree).
        nolink.start(cap, links=False)
        for c in nolink.containers:
            wait_ready(nolink, c.name)
        truth = {c.id: (nolink.namespace, nolink.name, c.name, nolink.qos) for c in nolink.containers}
        rows = d.wait_for(lambda: listed(nolink), 20, 1.0) or top_rows()
        check_names(rows, truth, "11. no /var/log/containers link: names from the runtime's state", (nolink,))
        nolink.stop()
        # Stale: links for the ids of an earlier restart, none for the running one.
        stale.start(cap, links=False)
        os.makedirs("/var/log/containers", exist_ok=True)
        for c in stale.containers:
            old = "0" * 56 + "deadbeef"
            os.symlink(f"{stale.log_directory}/{c.name}/0.log",
                       f"/var/log/containers/{stale.name}_{stale.namespace}_{c.name}-{old}.log")
            wait_ready(stale, c.name)
        truth = {c.id: (stale.namespace, stale.name, c.name, stale.qos) for c in stale.containers}
        rows = d.wait_for(lambda: listed(stale), 20, 1.0) or top_rows()
        check_names(rows, truth, "11. a stale /var/log/containers link (an earlier id): names from the runtime's state",
                    (stale,))
        # No /var/log/containers at all.
        moved = "/var/log/containers.lab-moved"
        os.rename("/var/log/containers", moved)
        restart_daemon()
        d.wait_for(lambda: d.show("ActiveState") == "active", 30)
        rows = d.wait_for(lambda: listed(stale), 20, 1.0) or top_rows()
        check_names(rows, truth, "11. /var/log/containers removed, daemon restarted: names from the runtime's state",
                    (stale,))
    finally:
        if moved and os.path.exists(moved):
            if os.path.exists("/var/log/containers"):
                shutil.rmtree("/var/log/containers", ignore_errors=True)
            os.rename(moved, "/var/log/containers")
        for c in stale.containers:
            for f in glob.glob(f"/var/log/containers/{stale.name}_{stale.namespace}_{c.name}-*.log"):
                os.unlink(f)
        nolink.stop()
        stale.stop()
