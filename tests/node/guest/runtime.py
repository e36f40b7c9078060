"""The node lab's runtime scenarios (issue 13): oomguard against what a real
container runtime creates. containerd 1.6 + runc from Debian, the CRI plugin
with SystemdCgroup = true, driven over the CRI by cri.Kubelet-like calls
(cri.py). Runs inside the VM; `d` is lab.py (its check/note/fig, journal and
kmsg helpers).

  8   real pods of all three QoS classes, several containers each: kubepods
      found when it appears after the daemon started and at a start with it
      present; the ranking names pod and container exactly as the runtime
      knows them (CRI ContainerStatus); QoS; a real sysrq trigger with the
      shipped config names the kernel's victim; memory.oom.group=1 from the
      CRI: the whole container died, its pod's other container lived
  9   the DaemonSet for real: the image from packaging/container/Containerfile
      (rootfs from the .deb and Debian's packages), run as the shipped
      manifest says (manifest_cri.py's translation), reading the host's
      /proc, naming pods, writing the host's sysrq-trigger
  10  kill-cgroup on real pods: the container dies, the pod's other
      containers live, oom_score_adj <= -997 never chosen, nothing outside
      kubepods touched
  11  container names without kubelet's /var/log/containers symlinks (none,
      or stale): from the runtime's own state
"""
import glob
import json
import os
import re
import shutil
import sys
import time

import lab as d

LAB = os.path.dirname(os.path.abspath(__file__))
WORK = "/run/oomguard-lab/cri"
_state = {}


def cri():
    """containerd started with the lab's config and the lab's images imported
    (once per boot). Returns the cri module and a client."""
    if "cri" in _state:
        return _state["mod"], _state["cri"]
    missing = json.loads(d.read(f"{LAB}/runtime-missing", "[]") or "[]")
    if missing:
        raise RuntimeError("the lab disk lacks what the runtime scenarios need: " + "; ".join(missing))
    sys.path.insert(0, LAB)
    t = time.monotonic()
    import cri as mod
    d.fig("cri_import_s", f"{time.monotonic() - t:.1f}")
    t = time.monotonic()
    version = mod.start_containerd()
    d.fig("containerd_start_s", f"{time.monotonic() - t:.1f}")
    d.check("containerd" in version and " 1.6." in version, "8. containerd 1.6 from Debian answers on its CRI socket",
            version)
    r = d.run(["containerd", "config", "dump"], timeout=60)
    check_cfg = re.search(r"SystemdCgroup = true", r.stdout) and "lab.local/pause:1" in r.stdout
    d.check(check_cfg, "8. the CRI plugin runs with SystemdCgroup = true and the lab's sandbox image",
            "" if check_cfg else r.stdout[-400:] + r.stderr[-200:])
    t = time.monotonic()
    out = mod.build_lab_images(WORK, f"{LAB}/oomguard-node-hog-static", f"{LAB}/oomguard-node-pause")
    d.fig("lab_images_s", f"{time.monotonic() - t:.1f}")
    client = mod.Cri()
    for ref in (mod.PAUSE_IMAGE, mod.WORKLOAD_IMAGE):
        st = client.call("ImageStatus", image=mod.api.ImageSpec(image=ref))
        d.check(st.image.id, f"8. CRI ImageStatus finds {ref} (built here as an OCI layout, ctr import)",
                f"{st.image.id[:19]} {list(st.image.repo_tags)}; " + " | ".join(o.splitlines()[0][:80] for o in out))
    _state.update(mod=mod, cri=client)
    return mod, client


def capacity():
    return d.meminfo()["MemTotal"]


def top_rows():
    r = d.run(["oomguardctl", "top", "-n", "50", "--json"])
    try:
        return json.loads(r.stdout)
    except json.JSONDecodeError:
        return None


def cid_of(cgroup):
    m = re.search(r"cri-containerd-([0-9a-f]{64})\.scope$", cgroup or "")
    return m.group(1) if m else None


def stat_ws(path):
    """kubelet's working set of a cgroup: memory.current - inactive_file."""
    cur = int(d.read(f"{path}/memory.current", "0").strip() or 0)
    m = re.search(r"^inactive_file (\d+)", d.read(f"{path}/memory.stat"), re.M)
    return cur - (int(m.group(1)) if m else 0)


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


def make_pods(mod, client, trigger_hog=None):
    """Guaranteed (2 containers), Burstable (2), BestEffort (helper; and the
    leaker, started later by the caller)."""
    Mi = 1 << 20
    C = mod.Container
    g = mod.Pod(client, "prod", "db-0", "Guaranteed", [
        C("postgres", ["--anon", "96", "--hold", "600"], request=256 * Mi, limit=256 * Mi),
        C("metrics", ["--anon", "8", "--hold", "600"], request=32 * Mi, limit=32 * Mi)],
        labels={"app": "db", "statefulset.kubernetes.io/pod-name": "db-0"})
    b = mod.Pod(client, "prod", "web-7d9f8b6c5-q2x7z", "Burstable", [
        C("nginx", ["--anon", "160", "--hold", "600"], request=64 * Mi, limit=512 * Mi),
        C("istio-proxy", ["--anon", "24", "--hold", "600"], request=32 * Mi)],
        labels={"app": "web", "pod-template-hash": "7d9f8b6c5"})
    be = mod.Pod(client, "batch", "leaky-job-x2k4q", "BestEffort", [
        C("helper", ["--anon", "8", "--hold", "600"]),
        C("leaker", trigger_hog or ["--anon", "40", "--hold", "600"])],
        labels={"job-name": "leaky-job"})
    return g, b, be


def wait_ready(pod, name, timeout=60):
    return pod.wait_log(name, r"stdout F ready", timeout)


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


def restart_daemon():
    """systemctl restart, with the unit's start rate limit reset first: the
    unit gives up after 5 starts in 60 s (StartLimitBurst, so that a broken
    config does not loop forever), and the scenarios before these restart it
    on purpose often enough to reach that (start-limit-hit in the full lab)."""
    d.run(["systemctl", "reset-failed", "oomguard"])
    d.run(["systemctl", "restart", "oomguard"], timeout=60)


def note_daemon_state(tag):
    """Why the daemon is not there: its unit's state and last journal lines."""
    for cmd in (["systemctl", "status", "oomguard", "--no-pager", "-n", "0"],
                ["journalctl", "-u", "oomguard", "-n", "60", "--no-pager", "-o", "short-monotonic"]):
        r = d.run(cmd)
        for line in (r.stdout + r.stderr).splitlines()[-60:]:
            d.note(f"{tag}: {line[:300]}")


def note_entry(e):
    keys = sorted(k for k in e if k.startswith("OOMGUARD_") or k in ("MESSAGE_ID", "PRIORITY"))
    m = d.msg(e).splitlines()[0]
    d.note(f"journal {e.get('__MONOTONIC_TIMESTAMP')} MESSAGE={m[:330]!r}")
    if len(m) > 330:
        d.note(f"  ...{m[330:700]}")
    for k in keys:
        d.note(f"  {k}={str(e[k])[:360]}")


def check_names(rows, truth, what, pods=()):
    """oomguardctl top against the runtime: one row per pod (namespace, pod,
    QoS, its cgroup), then the heaviest pod's containers (name and the id in
    the scope name, as CRI ContainerStatus says)."""
    if not rows:
        d.check(False, what, "oomguardctl top listed nothing: " + d.run(["oomguardctl", "top", "-n", "50"]).stdout[-600:])
        return False
    bad = []
    for p in pods:
        row = next((r for r in rows if not r.get("container") and r.get("cgroup") == p.cgroup), None)
        got = (row.get("namespace"), row.get("pod"), row.get("qos")) if row else None
        if got != (p.namespace, p.name, p.qos):
            bad.append(f"pod {p.cgroup}: want {p.namespace}/{p.name} {p.qos}, got {got}")
    first = next((i for i, r in enumerate(rows) if not r.get("container")), 0)
    crows = []
    for r in rows[first + 1:]:
        if not r.get("container"):
            break
        crows.append(r)
    sandboxes = {p.sandbox_id for p in pods}
    named, shown_sandbox = 0, []
    for r in crows:
        cid = cid_of(r.get("cgroup"))
        if cid in sandboxes:
            shown_sandbox.append(f"{r.get('pod')}/{r.get('container')[:16]}")
            continue
        want = truth.get(cid)
        got = (r.get("namespace"), r.get("pod"), r.get("container"), r.get("qos"))
        if want is None or got != want:
            bad.append(f"container {cid and cid[:12]}: want {want}, got {got}")
        else:
            named += 1
    top_pod = next((p for p in pods if p.cgroup == rows[first].get("cgroup")), None)
    expect = len([c for c in top_pod.containers if c.id]) if top_pod else 0
    if named != expect:
        bad.append(f"{named} of the heaviest pod's {expect} containers named; its rows: " + ", ".join(
            f"{r.get('container')}@{(cid_of(r.get('cgroup')) or r.get('cgroup'))[:12]}" for r in crows) +
            f"; first row {rows[first].get('namespace')}/{rows[first].get('pod')}")
    if shown_sandbox:
        bad.append(f"the sandbox (pause) is listed as a container of its pod: {shown_sandbox}")
    return d.check(not bad, what, "; ".join(bad) if bad else
                   f"{len(pods)} pods; heaviest {rows[first].get('namespace')}/{rows[first].get('pod')}: " +
                   ", ".join(f"{r.get('container')[:20]} {cid_of(r.get('cgroup'))[:12] if cid_of(r.get('cgroup')) else '?'}"
                             for r in crows))


def heaviest_check(rows, pods, tag):
    if not rows:
        return
    ws = {}
    for p in pods:
        ws[p.name] = stat_ws(d.CG + p.cgroup)
    pod_rows = [r for r in rows if not r.get("container")]
    top = pod_rows[0] if pod_rows else {}
    want = max(ws, key=ws.get)
    d.check(top.get("pod") == want, f"{tag} the heaviest pod is the one the kernel's files say (working set)",
            f"oomguard {top.get('namespace')}/{top.get('pod')} {int(top.get('working_set_bytes', 0)) >> 20} MiB; "
            + ", ".join(f"{k} {v >> 20} MiB" for k, v in ws.items()))


def log_entries(pod, name, event=None):
    """The daemon's stderr entries from its CRI log: '<time> stderr F <prio>event: msg FIELD=v ...',
    a message with newlines going on over the next log lines (no '<prio>' head)."""
    entries = []
    out = []
    for line in d.read(pod.container(name).log(pod)).splitlines():
        m = re.match(r"\S+ (stdout|stderr) [FP] (.*)$", line)
        if not m:
            continue
        if m.group(2).startswith("{"):
            # --log-format json (the shipped DaemonSet): one object per entry; its
            # keys are the journal fields in lower case without OOMGUARD_.
            o = json.loads(m.group(2))
            meta = ("ts", "level", "event", "msg", "detail", "message_id")
            e = {"event": o.get("event"), "priority": o.get("level"), "line": line,
                 "message": o.get("msg", ""), "text": o.get("msg", "") + ("\n" + o["detail"] if "detail" in o else ""),
                 "fields": {"OOMGUARD_" + k.upper(): v for k, v in o.items() if k not in meta}}
            if event is None or e["event"] == event:
                out.append(e)
            continue
        h = re.match(r"<(\d)>([\w-]+): (.*)$", m.group(2))
        if h:
            entries.append({"event": h.group(2), "priority": h.group(1), "text": h.group(3), "line": line})
        elif entries:
            entries[-1]["text"] += "\n" + m.group(2)
            entries[-1]["line"] += "\n" + line
    for e in entries:
        e["fields"] = dict(re.findall(r" (OOMGUARD_[A-Z_]+)=(\S*)", e["text"]))
        e["message"] = re.split(r" OOMGUARD_[A-Z_]+=", e["text"])[0]
        if event is None or e["event"] == event:
            out.append(e)
    return out


def build_oomguard_image(mod, client, ref):
    debs = sorted(glob.glob("/root/oomguard_*.deb"))
    ctx = f"{WORK}/oomguard-context"
    os.makedirs(ctx, exist_ok=True)
    t = time.monotonic()
    r = d.run(["sh", f"{LAB}/container/make-rootfs.sh", debs[0], f"{ctx}/rootfs.tar"], timeout=300)
    if not d.check(r.returncode == 0, "9. make-rootfs.sh: the image's rootfs from the .deb and Debian's packages",
                   (r.stderr.strip().splitlines() or [""])[-1][:300] + f" ({time.monotonic() - t:.0f} s)"):
        return False
    mod.containerfile_build(f"{LAB}/container/Containerfile", ctx, ref, f"{WORK}/oomguard.tar")
    mod.import_image(f"{WORK}/oomguard.tar")
    st = client.call("ImageStatus", image=mod.api.ImageSpec(image=ref))
    d.fig("oomguard_image_s", f"{time.monotonic() - t:.1f}")
    d.fig("oomguard_rootfs_mib", os.path.getsize(f"{ctx}/rootfs.tar") >> 20)
    return d.check(st.image.id, "9. the oomguard image built from packaging/container/Containerfile (FROM scratch, "
                   "ADD rootfs.tar) and imported with ctr", f"{ref} {st.image.id[:19]}")


def prepare_volumes(t):
    """What kubelet does for the pod's volumes before CreateContainer."""
    for p in t["prepare"]:
        if "mkdir" in p:
            os.makedirs(p["mkdir"], exist_ok=True)
            if p.get("tmpfs"):
                d.run(["mount", "-t", "tmpfs", "-o", f"size={p['size'] or 1 << 20},mode=0777", "tmpfs", p["mkdir"]])
        elif "expect" in p:
            st = os.stat(p["expect"])
            import stat as S
            ok = {"Directory": S.S_ISDIR, "CharDevice": S.S_ISCHR}.get(p["type"], lambda m: True)(st.st_mode)
            if not ok:
                raise RuntimeError(f"hostPath {p['expect']} is not a {p['type']}")
    for path, text in t["files"].items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        d.write(path, text)


def daemonset_pod(mod, client, t):
    tp = t["pod"]
    C = mod.Container
    cs = []
    for c in t["containers"]:
        cs.append(C(c["name"], c["args"], command=c["command"], request=c["memory_limit"], limit=c["memory_limit"],
                    privileged=c["privileged"], readonly_rootfs=c["readonly_rootfs"], mounts=c["mounts"],
                    envs=c["envs"], image=c["image"], cpu_shares=c["cpu_shares"], cpu_quota=c["cpu_quota"],
                    cpu_period=c["cpu_period"], oom_score_adj=c["oom_score_adj"],
                    run_as_user=c.get("run_as_user")))
    # host_network: the one deviation (no CNI in the lab); see manifest_cri.py.
    return mod.Pod(client, tp["namespace"], tp["name"], tp["qos"], cs, uid=tp["uid"], host_pid=tp["host_pid"],
                   host_network=True, labels=tp["labels"], annotations=tp["annotations"],
                   pod_memory_limit=tp["memory_limit"])


def scenario9():
    mod, client = cri()
    t = json.load(open(f"{LAB}/daemonset-cri.json"))
    d.note("9. translation deviations: " + "; ".join(t["deviations"]))
    c0 = t["containers"][0]
    if not build_oomguard_image(mod, client, c0["image"]):
        return
    prepare_volumes(t)
    cap = capacity()
    host_was = d.show("ActiveState")
    ds = daemonset_pod(mod, client, t)
    name = c0["name"]
    g, b, be = make_pods(mod, client)
    pods = [g, b, be]
    try:
        # With the host package's daemon running, the pod must refuse (the shared lock).
        ds.start(cap)
        refused = d.wait_for(lambda: [e for e in log_entries(ds, name) if "holds the lock" in e["message"]], 40)
        st = d.wait_for(lambda: (lambda s: s if s.state == mod.api.CONTAINER_EXITED else None)(ds.status(name)), 20)
        d.check(host_was == "active" and refused and st is not None,
                "9. with the host package's oomguard running, the DaemonSet pod refuses to start (the instance lock "
                "in the host's /run/oomguard)", (refused[0]["line"][:300] if refused else
                                                  d.read(ds.container(name).log(ds))[-300:]) +
                f"; exit {st.exit_code if st else '?'}")
        ds.stop()
        d.run(["systemctl", "stop", "oomguard"], timeout=60)
        prepare_volumes(t)
        ds = daemonset_pod(mod, client, t)
        t0 = time.monotonic()
        ds.start(cap)
        start = d.wait_for(lambda: log_entries(ds, name, "start"), 60)
        d.fig("daemonset_start_s", f"{time.monotonic() - t0:.1f}")
        pid = (ds.pids(name) or [0])[0]
        if not d.check(start and pid, "9. the DaemonSet's oomguard started in its container",
                       (start[0]["line"][:400] if start else d.read(ds.container(name).log(ds))[-600:])):
            return
        for e in log_entries(ds, name):
            d.note(f"daemonset log: {e['line'][:600]}")
        fds = {os.readlink(f"/proc/{pid}/fd/{x}") for x in os.listdir(f"/proc/{pid}/fd")
               if os.path.exists(f"/proc/{pid}/fd/{x}")}
        d.check("/host/proc/meminfo" in fds and "/host/proc/pressure/memory" in fds,
                "9. it reads the host's /proc (its fds: /host/proc/meminfo, /host/proc/pressure/memory)",
                " ".join(sorted(f for f in fds if f.startswith("/"))))
        mem = int(start[0]["fields"].get("OOMGUARD_MEM_AVAILABLE_BYTES", "0") or 0) >> 20
        host_avail = d.meminfo()["MemAvailable"] >> 20
        d.check(mem and abs(mem - host_avail) < 200 and "/host/proc/meminfo" in start[0]["message"],
                "9. its MemAvailable is the host's (start line: monitoring /host/proc/meminfo)",
                f"daemon {mem} MiB at start, host {host_avail} MiB now")
        adj = d.read(f"/proc/{pid}/oom_score_adj").strip()
        lim = d.read(ds.path(name, "memory.max")).strip()
        d.check(adj == "-997" and lim == str(c0["memory_limit"]) and d.CG + ds.cgroup + "/" in ds.path(name),
                "9. kubelet's Guaranteed settings: oom_score_adj -997, memory.max 64Mi, under kubepods-pod<uid>.slice",
                f"adj {adj}, memory.max {lim}, {ds.cgroup}")
        # Workloads, then the leak.
        for p in pods:
            p.start(cap, only=None if p is not be else ["helper"])
        all(wait_ready(p, c.name) for p in pods for c in p.containers if c.id)
        avail = d.meminfo()["MemAvailable"] >> 20
        leaker = be.container("leaker")
        leaker.args = ["--anon", str(avail + 256), "--rate", "150", "--procs", "3", "--hold", "120"]
        kmsg = d.Kmsg()
        be.start_container(leaker, cap)
        be.wait_log("leaker", r"stdout F started", 30)
        pids = be.pids("leaker")
        d.wait_for(lambda: not d.read(be.path("leaker", "cgroup.procs")).split(), 90, 0.05)
        time.sleep(2)
        recs = kmsg.since(kmsg.mark)
        texts = [x for _, _, x in recs]
        d.check(any("sysrq: Manual OOM execution" in x for x in texts),
                "9. the DaemonSet wrote the host's /proc/sysrq-trigger: the kernel logged 'Manual OOM execution'",
                next((x for x in texts if "sysrq" in x), "no sysrq line"))
        k = d.killed(recs)
        d.check(k and {p for p, _, _ in k} <= set(pids) and all(not d.alive(p) for p in pids),
                "9. the kernel killed the BestEffort pod's leaker container, nothing else",
                f"killed {sorted(k)}, container {pids}")
        trig = d.wait_for(lambda: log_entries(ds, name, "trigger"), 10)
        vic = d.wait_for(lambda: log_entries(ds, name, "victim"), 20)
        for e in log_entries(ds, name):
            if e["event"] != "start":
                for i, ln in enumerate(e["line"].splitlines()):
                    for j in range(0, min(len(ln), 1600), 380):
                        d.note(f"daemonset log{' +' if i or j else ':'} {ln[j:j + 380]}")
        f = trig[0]["fields"] if trig else {}
        d.check(f.get("OOMGUARD_POD_NAME") == be.name and f.get("OOMGUARD_CONTAINER_NAME") == "leaker"
                and f.get("OOMGUARD_CONTAINER_ID") == leaker.id and f.get("OOMGUARD_QOS") == "BestEffort",
                "9. its trigger line ranks and names the heaviest pod and container (BestEffort leaker)",
                trig[0]["line"][:400] if trig else "no trigger line")
        v = vic[0]["fields"] if vic else {}
        d.check(v.get("OOMGUARD_POD_NAME") == be.name and v.get("OOMGUARD_CONTAINER_NAME") == "leaker",
                "9. it reports the kernel's victim (from the host's /dev/kmsg) by pod and container",
                vic[0]["line"][:400] if vic else "no victim line")
        d.check(v.get("OOMGUARD_PREDICTION_MATCHED") == "1" and f.get("OOMGUARD_PREDICTED_POD_NAME") == be.name,
                "14. from the pod too, the prediction (over the host's /proc) was the kernel's victim",
                f"trigger predicted {f.get('OOMGUARD_PREDICTED_PID')} ({f.get('OOMGUARD_PREDICTED_POD_NAME')}), "
                f"victim MATCHED={v.get('OOMGUARD_PREDICTION_MATCHED')} by {v.get('OOMGUARD_PREDICTION_MATCH')}")
        r = client.call("ExecSync", container_id=ds.container(name).id, cmd=c0["liveness_exec"], timeout=30)
        d.check(r.exit_code == 0, "9. the manifest's liveness probe passes (ExecSync in the container)",
                f"exit {r.exit_code} {r.stderr.decode(errors='replace')[-200:]}")
        d.check(ds.pids(name) and d.alive(pid), "9. the DaemonSet's oomguard kept running")
    finally:
        for p in pods:
            p.stop()
        ds.stop()
        d.run(["systemctl", "start", "oomguard"], timeout=60)
        d.wait_for(lambda: d.show("ActiveState") == "active", 30)


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
