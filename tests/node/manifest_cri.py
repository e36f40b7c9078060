#!/usr/bin/env python3
"""The shipped DaemonSet (packaging/kubernetes/daemonset.yaml + configmap.yaml)
translated into what kubelet would ask of the CRI runtime for it, for the node
lab (issue 13): tests/node/guest/runtime_daemonset.py runs the pod under
containerd with exactly these settings (tests/node/guest/cri.py sends them).

What kubelet does with each field, for one node:
  hostNetwork/hostPID/hostIPC     NamespaceOption NODE, else POD (network, ipc)
                                  and CONTAINER (pid)
  securityContext.privileged      LinuxContainerSecurityContext.privileged, and
                                  the sandbox's privileged flag
  readOnlyRootFilesystem          LinuxContainerSecurityContext.readonly_rootfs
  resources                       QoS class -> the pod cgroup parent
                                  (kubepods[-<qos>]-pod<uid_>.slice), cpu shares,
                                  quota/period, memory limit, oom_score_adj,
                                  unified memory.oom.group=1 (cgroup v2)
  command/args                    ContainerConfig.command/args
  volumeMounts + volumes          Mount{container_path, host_path, readonly}:
                                  hostPath as is (DirectoryOrCreate: kubelet
                                  makes it), configMap and emptyDir under
                                  /var/lib/kubelet/pods/<uid>/volumes/...
  livenessProbe.exec              ExecSync in the container

Deviations in the lab, each named in the translation's "deviations":
  - the pod network: the lab has no CNI plugin, so the pod shares the node's
    network namespace (oomguard uses no network: its metrics are a textfile);
  - what only a cluster uses (scheduling, priority, tolerations, the service
    account token, the update strategy) has no CRI call.

Usage:
  manifest_cri.py --translate SOURCE_ROOT UID MEM_CAPACITY_BYTES > pod.json
  manifest_cri.py --check SOURCE_ROOT    (the test: exit 0 when the translation
                                          matches the manifest, 1 with reasons)
"""
import json
import os
import sys

import yaml

QOS_PARENT = {"Guaranteed": "kubepods", "Burstable": "kubepods-burstable", "BestEffort": "kubepods-besteffort"}
KUBELET_PODS = "/var/lib/kubelet/pods"
IMAGE_REF = "docker.io/library/oomguard:lab"  # the image the lab builds and imports

# Fields of the pod and container specs: translated, or with no CRI call on
# one node. Anything else in the manifest fails the check, so a new field
# cannot go untranslated unnoticed.
POD_TRANSLATED = {"containers", "volumes", "hostNetwork", "hostPID", "hostIPC", "terminationGracePeriodSeconds"}
POD_CLUSTER_ONLY = {"priorityClassName", "tolerations", "automountServiceAccountToken", "enableServiceLinks",
                    "nodeSelector", "affinity", "serviceAccountName"}
CONTAINER_TRANSLATED = {"name", "image", "command", "args", "env", "securityContext", "resources", "volumeMounts",
                        "livenessProbe", "imagePullPolicy"}
SECURITY_TRANSLATED = {"privileged", "readOnlyRootFilesystem", "runAsUser"}


def load(src):
    k8s = os.path.join(src, "packaging", "kubernetes")
    with open(os.path.join(k8s, "daemonset.yaml")) as f:
        ds = yaml.safe_load(f)
    with open(os.path.join(k8s, "configmap.yaml")) as f:
        cm = yaml.safe_load(f)
    return ds, cm


def quantity(q):
    """Kubernetes quantities: bytes for memory, millicores for cpu ("200m")."""
    q = str(q)
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "k": 10**3, "M": 10**6, "G": 10**9}
    for u, mult in units.items():
        if q.endswith(u):
            return int(float(q[:-len(u)]) * mult)
    if q.endswith("m"):
        return float(q[:-1]) / 1000
    return float(q) if "." in q else int(q)


def millicpu(q):
    v = quantity(q)
    return int(round(v * 1000)) if isinstance(v, float) else int(v) * 1000


def qos_class(containers):
    req = [c.get("resources", {}).get("requests", {}) for c in containers]
    lim = [c.get("resources", {}).get("limits", {}) for c in containers]
    if not any(req) and not any(lim):
        return "BestEffort"
    for r, l in zip(req, lim):
        for res in ("cpu", "memory"):
            if res not in l or str(r.get(res, l[res])) != str(l[res]):
                return "Burstable"
    return "Guaranteed"


def oom_score_adj(qos, mem_request, capacity):
    # kubelet's pkg/kubelet/qos policy.
    if qos == "Guaranteed":
        return -997
    if qos == "BestEffort":
        return 1000
    adj = 1000 - (1000 * mem_request) // capacity
    return max(2, min(999, adj))


def translate(src, uid, capacity):
    ds, cm = load(src)
    tmpl = ds["spec"]["template"]
    spec = tmpl["spec"]
    meta = ds["metadata"]
    qos = qos_class(spec["containers"])
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    vol_dir = f"{KUBELET_PODS}/{uid}/volumes"
    cm_by_name = {cm["metadata"]["name"]: cm}
    files, prepare = {}, []
    pod_name = f"{meta['name']}-lab"  # a DaemonSet pod: <name>-<5 chars>; one node here
    out = {
        "pod": {
            "namespace": meta["namespace"], "name": pod_name, "uid": uid, "qos": qos,
            "cgroup_parent": f"{QOS_PARENT[qos]}-pod{uid.replace('-', '_')}.slice",
            "labels": dict(tmpl["metadata"].get("labels", {}), **{
                "io.kubernetes.pod.name": pod_name, "io.kubernetes.pod.namespace": meta["namespace"],
                "io.kubernetes.pod.uid": uid}),
            "annotations": {"kubernetes.io/config.source": "api"},
            "host_network": bool(spec.get("hostNetwork", False)),
            "host_pid": bool(spec.get("hostPID", False)),
            "host_ipc": bool(spec.get("hostIPC", False)),
            "privileged": any(c.get("securityContext", {}).get("privileged") for c in spec["containers"]),
            "termination_grace_s": spec.get("terminationGracePeriodSeconds", 30),
        },
        "containers": [],
        "files": files,
        "prepare": prepare,
        "deviations": [],
    }
    if not out["pod"]["host_network"]:
        out["deviations"].append("network: the node's namespace (the lab has no CNI plugin), the manifest's is "
                                 "the pod network")
    limits_mem = 0
    for c in spec["containers"]:
        res = c.get("resources", {})
        lim, req = res.get("limits", {}), res.get("requests", {})
        mem_limit = quantity(lim["memory"]) if "memory" in lim else 0
        mem_req = quantity(req.get("memory", lim.get("memory", 0))) if (req or lim) else 0
        limits_mem += mem_limit
        cpu_req = millicpu(req.get("cpu", lim.get("cpu", 0))) if (req.get("cpu") or lim.get("cpu")) else 0
        cpu_lim = millicpu(lim["cpu"]) if "cpu" in lim else 0
        mounts = []
        for vm in c.get("volumeMounts", []):
            v = volumes[vm["name"]]
            m = {"container_path": vm["mountPath"], "readonly": bool(vm.get("readOnly", False)), "volume": vm["name"]}
            if "hostPath" in v:
                m["host_path"] = v["hostPath"]["path"]
                m["kind"] = "hostPath"
                m["type"] = v["hostPath"].get("type", "")
                if m["type"] == "DirectoryOrCreate":
                    prepare.append({"mkdir": m["host_path"]})
                else:
                    prepare.append({"expect": m["host_path"], "type": m["type"]})
            elif "configMap" in v:
                m["kind"] = "configMap"
                m["host_path"] = f"{vol_dir}/kubernetes.io~configmap/{vm['name']}"
                data = cm_by_name[v["configMap"]["name"]]["data"]
                for key, text in data.items():
                    files[f"{m['host_path']}/{key}"] = text
                # kubelet mounts configMaps read-only whatever the mount says.
                m["readonly"] = True
            elif "emptyDir" in v:
                m["kind"] = "emptyDir"
                m["host_path"] = f"{vol_dir}/kubernetes.io~empty-dir/{vm['name']}"
                ed = v["emptyDir"] or {}
                prepare.append({"mkdir": m["host_path"], "tmpfs": ed.get("medium") == "Memory",
                                "size": quantity(ed["sizeLimit"]) if "sizeLimit" in ed else 0})
            else:
                raise ValueError(f"volume {vm['name']}: a kind the lab does not translate: {sorted(v)}")
            mounts.append(m)
        sc = c.get("securityContext", {})
        probe = c.get("livenessProbe", {})
        out["containers"].append({
            "name": c["name"],
            "image": IMAGE_REF,
            "manifest_image": c["image"],
            "command": list(c.get("command", [])),
            "args": list(c.get("args", [])),
            "envs": {e["name"]: str(e.get("value", "")) for e in c.get("env", [])},
            "privileged": bool(sc.get("privileged", False)),
            "readonly_rootfs": bool(sc.get("readOnlyRootFilesystem", False)),
            "run_as_user": sc.get("runAsUser"),  # None: the image's user
            "memory_limit": mem_limit,
            "cpu_shares": max(2, cpu_req * 1024 // 1000) if cpu_req else 2,
            "cpu_period": 100000 if cpu_lim else 0,
            "cpu_quota": cpu_lim * 100000 // 1000 if cpu_lim else 0,
            "oom_score_adj": oom_score_adj(qos, mem_req, capacity),
            "unified": {"memory.oom.group": "1"},
            "mounts": mounts,
            "liveness_exec": list(probe.get("exec", {}).get("command", [])),
            "log_path": f"{c['name']}/0.log",
        })
    out["pod"]["memory_limit"] = limits_mem if qos != "BestEffort" else 0
    out["deviations"] += [f"{k}: no CRI call (cluster only)" for k in sorted(POD_CLUSTER_ONLY & set(spec))]
    return out


def check(src):
    """The translation against an independent reading of the manifest."""
    ds, cm = load(src)
    spec = ds["spec"]["template"]["spec"]
    problems = []
    unknown = set(spec) - POD_TRANSLATED - POD_CLUSTER_ONLY
    if unknown:
        problems.append(f"pod spec fields the translation does not know: {sorted(unknown)}")
    uid = "0b5e1ab0-0000-4000-8000-000000000001"
    t = translate(src, uid, 2 << 30)
    pod = t["pod"]
    for key, field in (("hostNetwork", "host_network"), ("hostPID", "host_pid"), ("hostIPC", "host_ipc")):
        if bool(spec.get(key, False)) != pod[field]:
            problems.append(f"{key}: manifest {spec.get(key, False)}, translation {pod[field]}")
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    if len(t["containers"]) != len(spec["containers"]):
        problems.append("not one translated container per manifest container")
    for c, tc in zip(spec["containers"], t["containers"]):
        unknown = set(c) - CONTAINER_TRANSLATED
        if unknown:
            problems.append(f"container {c['name']}: fields the translation does not know: {sorted(unknown)}")
        sc = c.get("securityContext", {})
        unknown = set(sc) - SECURITY_TRANSLATED
        if unknown:
            problems.append(f"container {c['name']}: securityContext fields not translated: {sorted(unknown)}")
        if tc["run_as_user"] != sc.get("runAsUser"):
            problems.append(f"container {c['name']}: runAsUser differs")
        if tc["privileged"] != bool(sc.get("privileged", False)) or \
                tc["readonly_rootfs"] != bool(sc.get("readOnlyRootFilesystem", False)):
            problems.append(f"container {c['name']}: privileged/readOnlyRootFilesystem differ")
        if sc.get("privileged") and not pod["privileged"]:
            problems.append("a privileged container in a sandbox not marked privileged")
        if tc["command"] != c.get("command", []) or tc["args"] != c.get("args", []):
            problems.append(f"container {c['name']}: command/args {tc['command']} {tc['args']} differ from "
                            f"{c.get('command')} {c.get('args')}")
        want = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
        got = {m["container_path"]: m for m in tc["mounts"]}
        if set(want) != set(got):
            problems.append(f"container {c['name']}: mounts {sorted(got)} != manifest {sorted(want)}")
        for path, m in want.items():
            g = got.get(path)
            if not g:
                continue
            v = vols[m["name"]]
            if "hostPath" in v and g["host_path"] != v["hostPath"]["path"]:
                problems.append(f"{path}: host path {g['host_path']} != {v['hostPath']['path']}")
            ro = bool(m.get("readOnly", False)) or "configMap" in v
            if g["readonly"] != ro:
                problems.append(f"{path}: readonly {g['readonly']} != manifest {ro}")
        lim = c.get("resources", {}).get("limits", {})
        if "memory" in lim and tc["memory_limit"] != quantity(lim["memory"]):
            problems.append(f"memory limit {tc['memory_limit']} != {lim['memory']}")
        if "cpu" in lim and tc["cpu_quota"] != millicpu(lim["cpu"]) * 100:
            problems.append(f"cpu quota {tc['cpu_quota']} != {lim['cpu']}")
        qos = pod["qos"]
        if qos == "Guaranteed" and (tc["oom_score_adj"] != -997 or not pod["cgroup_parent"].startswith("kubepods-pod")):
            problems.append(f"Guaranteed: oom_score_adj {tc['oom_score_adj']}, parent {pod['cgroup_parent']}")
        probe = c.get("livenessProbe", {}).get("exec", {}).get("command", [])
        if tc["liveness_exec"] != probe:
            problems.append("liveness probe command differs")
    cfg = cm["data"]
    for key in cfg:
        if not any(p.endswith("/" + key) for p in t["files"]):
            problems.append(f"configMap key {key} not written into the config volume")
    # The deviations are exactly the named ones.
    allowed = {"network", *POD_CLUSTER_ONLY}
    for d in t["deviations"]:
        if d.split(":", 1)[0] not in allowed:
            problems.append(f"unexpected deviation: {d}")
    for p in problems:
        print(f"FAIL: {p}")
    if not problems:
        print(f"PASS: the CRI translation of daemonset.yaml matches it: {len(t['containers'][0]['mounts'])} mounts, "
              f"privileged={t['containers'][0]['privileged']}, hostPID={pod['host_pid']}, QoS {pod['qos']}; "
              f"deviations: {'; '.join(t['deviations'])}")
    return 1 if problems else 0


def main(argv):
    if len(argv) >= 2 and argv[0] == "--check":
        return check(argv[1])
    if len(argv) == 4 and argv[0] == "--translate":
        json.dump(translate(argv[1], argv[2], int(argv[3])), sys.stdout, indent=1, sort_keys=True)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
