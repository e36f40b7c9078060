"""The node lab's DaemonSet scenario (9, issue 13; see runtime.py): the image
built from packaging/container/Containerfile, run as the shipped manifest says
(manifest_cri.py's translation), refusing beside the host package's daemon,
then reading the host's /proc, naming pods and writing the host's
sysrq-trigger. Runs inside the VM."""
import glob
import json
import os
import re
import time

import lab as d
from runtime import LAB, WORK, capacity, cri, make_pods, wait_ready


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
