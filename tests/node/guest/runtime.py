"""The node lab's runtime scenarios (issue 13): oomguard against what a real
container runtime creates. containerd 1.6 + runc from Debian, the CRI plugin
with SystemdCgroup = true, driven over the CRI by cri.Kubelet-like calls
(cri.py). Runs inside the VM; `d` is lab.py (its check/note/fig, journal and
kmsg helpers). The scenarios are in runtime_pods.py (8, 10, 11) and
runtime_daemonset.py (9); this module holds what they share: containerd and
the lab's images (cri()), the workload pods, the daemon's restarts and
oomguardctl top checked against the runtime.

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
import json
import os
import re
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
