#!/usr/bin/env python3
"""Checks packaging/kubernetes: the DaemonSet, its ConfigMap and the Containerfile
agree with each other and with what the issue asks for.

- every path in the ConfigMap's [paths], sysrq_trigger, pod_logs_dir and the
  metrics file lies inside a volume mount of the right host path, read-only
  where the daemon only reads, writable where it writes;
- the --config argument names a key of the mounted ConfigMap;
- the ConfigMap's TOML passes the real daemon's --check-config;
- apps/v1, kube-system, system-node-critical, privileged, liveness probe,
  requests and limits, nodeSelector kubernetes.io/os: linux, --no-dbus and a
  single-line --log-format that the daemon's --help lists;
- a comment above every privilege in the securityContext (and every added
  capability of the capabilities/ component);
- the kill-cgroup/ component grants hostPID and a writable cgroupfs, and its
  drop-in, projected as kubelet does, gives the real daemon mode kill-cgroup;
- the metrics file is on the host (a hostPath node_exporter can read);
- every YAML file parses; kustomization.yaml and capabilities/ refer to files
  that exist, its images: entry names the DaemonSet's image, and (when kubectl
  is installed) both variants render;
- the Containerfile builds from the repository and installs the binary the
  DaemonSet runs.

Usage: check_kubernetes.py SOURCE_ROOT BUILT_DAEMON
"""
import os
import posixpath
import subprocess
import sys
import tempfile
import tomllib

try:
    import yaml
except ImportError:
    print("SKIP: python3-yaml is not installed (tools/deps.sh --test installs it)")
    sys.exit(77)

src, daemon = sys.argv[1], sys.argv[2]
kdir = os.path.join(src, "packaging", "kubernetes")
failures = 0


def check(ok, what, detail=""):
    global failures
    print(("PASS: " if ok else "FAIL: ") + what + ("" if ok or not detail else f" ({detail})"))
    if not ok:
        failures += 1
    return ok


def load(name):
    with open(os.path.join(kdir, name)) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    return docs


ds_docs = load("daemonset.yaml")
cm_docs = load("configmap.yaml")
ds = next((d for d in ds_docs if d.get("kind") == "DaemonSet"), None)
cm = next((d for d in cm_docs if d.get("kind") == "ConfigMap"), None)
if not check(ds is not None and cm is not None, "daemonset.yaml has a DaemonSet, configmap.yaml a ConfigMap"):
    sys.exit(1)

check(ds.get("apiVersion") == "apps/v1", "DaemonSet is apps/v1", ds.get("apiVersion"))
check(ds["metadata"].get("namespace") == "kube-system", "DaemonSet in kube-system")
check(cm["metadata"].get("namespace") == "kube-system", "ConfigMap in kube-system")
spec = ds["spec"]["template"]["spec"]
check(spec.get("priorityClassName") == "system-node-critical", "priorityClassName system-node-critical")
sel = ds["spec"]["selector"]["matchLabels"]
labels = ds["spec"]["template"]["metadata"]["labels"]
check(all(labels.get(k) == v for k, v in sel.items()), "selector matches the pod labels")

containers = spec["containers"]
check(len(containers) == 1, "one container")
c = containers[0]
check(c.get("securityContext", {}).get("privileged") is True, "container is privileged")
probe = c.get("livenessProbe")
check(bool(probe), "liveness probe present")
res = c.get("resources", {})
for kind in ("requests", "limits"):
    for r in ("cpu", "memory"):
        check(r in res.get(kind, {}), f"resources.{kind}.{r} set")
check(res.get("requests") == res.get("limits"), "requests == limits (Guaranteed QoS, oom_score_adj -997)")

volumes = {v["name"]: v for v in spec["volumes"]}
mounts = c["volumeMounts"]
for m in mounts:
    check(m["name"] in volumes, f"mount {m['mountPath']} has a volume", m["name"])


def mount_for(path):
    """The volume mount whose mountPath contains path (the deepest one)."""
    best = None
    for m in mounts:
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if best is None or len(mp) > len(best["mountPath"]):
                best = m
    return best


def host_path_of(path):
    m = mount_for(path)
    if not m:
        return None, None
    v = volumes.get(m["name"], {})
    if "hostPath" not in v:
        return m, None
    rel = posixpath.relpath(path, m["mountPath"])
    return m, posixpath.normpath(posixpath.join(v["hostPath"]["path"], rel))


# The config: --config PATH must be a key of the ConfigMap that is mounted there.
cmd = c.get("command", []) + c.get("args", [])
cfg_path = cmd[cmd.index("--config") + 1] if "--config" in cmd else None
check(cfg_path is not None, "container passes --config")
m = mount_for(cfg_path or "/nonexistent")
vol = volumes.get(m["name"]) if m else None
check(bool(vol and "configMap" in vol), f"{cfg_path} lies in a configMap volume")
if vol and "configMap" in vol:
    check(vol["configMap"]["name"] == cm["metadata"]["name"], "volume refers to the ConfigMap by its name",
          f'{vol["configMap"]["name"]} vs {cm["metadata"]["name"]}')
    key = posixpath.relpath(cfg_path, m["mountPath"])
    check(key in cm.get("data", {}), f"ConfigMap has the key {key}")
    check(m.get("readOnly") is True, "config mount is read-only")
else:
    key = None

toml_text = cm.get("data", {}).get(key or "oomguard.toml", "")
try:
    conf = tomllib.loads(toml_text)
    check(True, "ConfigMap TOML parses")
except tomllib.TOMLDecodeError as e:
    check(False, "ConfigMap TOML parses", str(e))
    sys.exit(1)

# The real daemon accepts it.
with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
    f.write(toml_text)
    f.flush()
    r = subprocess.run([daemon, "--check-config", f.name], capture_output=True, text=True)
    check(r.returncode == 0, "oomguard --check-config accepts the ConfigMap", r.stderr.strip())

paths = conf.get("paths", {})
action = conf.get("action", {})
kube = conf.get("kubernetes", {})
metrics = conf.get("metrics", {})

# [paths] proc is the host's /proc, writable (PSI trigger, sysrq-trigger).
proc = paths.get("proc")
m, hp = host_path_of(proc or "")
check(proc == "/host/proc", "[paths] proc = /host/proc", proc)
check(hp == "/proc", "[paths] proc is a mount of the host's /proc", hp)
check(m is not None and not m.get("readOnly", False), "host /proc is mounted writable (PSI, sysrq)")

trig = action.get("sysrq_trigger")
m, hp = host_path_of(trig or "")
check(hp == "/proc/sysrq-trigger", "sysrq_trigger is the host's /proc/sysrq-trigger", f"{trig} -> {hp}")
mode = action.get("mode", "sysrq")
check(mode in ("sysrq", "kill-cgroup"), "mode is sysrq or kill-cgroup", mode)
# kill-cgroup signals host pids (hidden as 0 without hostPID) and writes cgroup.kill.
cg_mount, _ = host_path_of(paths.get("cgroup") or "")
if mode == "kill-cgroup":
    check(spec.get("hostPID") is True, "kill-cgroup: the pod runs with hostPID: true")
    check(cg_mount is not None and not cg_mount.get("readOnly", False),
          "kill-cgroup: the host cgroupfs is mounted read-write")
with open(os.path.join(kdir, "configmap.yaml")) as f:
    cm_text = f.read()
check("kill-cgroup" in cm_text and "hostPID" in cm_text,
      "configmap.yaml says what kill-cgroup needs (hostPID, rw cgroupfs)")

cg = paths.get("cgroup")
m, hp = host_path_of(cg or "")
check(hp == "/sys/fs/cgroup", "[paths] cgroup is a mount of the host's cgroupfs", f"{cg} -> {hp}")
if mode == "sysrq":
    check(m is not None and m.get("readOnly") is True, "host cgroupfs is mounted read-only")

# The instance lock is the host's, so that the host package and the DaemonSet
# never both run (each refuses to start while the other holds it).
lock = paths.get("lock")
m, hp = host_path_of(lock or "")
check(hp == "/run/oomguard/lock", "[paths] lock is the host's /run/oomguard/lock", f"{lock} -> {hp}")
check(m is not None and not m.get("readOnly", False), "the host's /run/oomguard is mounted writable")

logs = kube.get("pod_logs_dir")
m, hp = host_path_of(logs or "")
check(hp == "/var/log/pods", "[kubernetes] pod_logs_dir is the host's /var/log/pods", f"{logs} -> {hp}")
check(m is not None and m.get("readOnly") is True, "/var/log/pods is mounted read-only")
# Container names come from the sibling containers/ directory of links.
clogs = posixpath.join(posixpath.dirname((logs or "/x").rstrip("/")), "containers")
m, hp = host_path_of(clogs)
check(hp == "/var/log/containers", "the host's /var/log/containers is mounted beside pod_logs_dir",
      f"{clogs} -> {hp}")
check(m is not None and m.get("readOnly") is True, "/var/log/containers is mounted read-only")

# Container names from the runtimes' own state (issue 13): their bundle and
# container directories under [paths] containerd_state / crio_storage, read-only,
# and never the runtime's socket beside them.
for pkey, default, sub in (("containerd_state", "/run/containerd", "io.containerd.runtime.v2.task"),
                           ("crio_storage", "/run/containers/storage", "overlay-containers")):
    root = paths.get(pkey) or default
    m, hp = host_path_of(posixpath.join(root, sub))
    check(hp == posixpath.join(default, sub), f"[paths] {pkey}: the host's {default}/{sub} is mounted there",
          f"{root}/{sub} -> {hp}")
    check(m is not None and m.get("readOnly") is True, f"{default}/{sub} is mounted read-only")
sock_mount, sock_hp = host_path_of(posixpath.join(paths.get("containerd_state") or "/run/containerd",
                                                  "containerd.sock"))
check(sock_hp != "/run/containerd/containerd.sock", "containerd's socket is not mounted into the pod",
      f"{sock_hp}")

kmsg = paths.get("kmsg")
m, hp = host_path_of(kmsg or "")
check(hp == "/dev/kmsg", "[paths] kmsg is the host's /dev/kmsg", f"{kmsg} -> {hp}")

# The metrics file is what the probe watches.
tf = metrics.get("textfile", "")
probe_cmd = " ".join(probe.get("exec", {}).get("command", [])) if probe else ""
check(bool(tf) and tf in probe_cmd, "liveness probe checks the metrics file's freshness", probe_cmd)

# Issue 16: deployable as shipped.
check(spec.get("nodeSelector", {}).get("kubernetes.io/os") == "linux", "nodeSelector kubernetes.io/os: linux")
args = c.get("args", [])
check("--no-dbus" in args, "--no-dbus (a pod has no system bus)", args)
fmt = args[args.index("--log-format") + 1] if "--log-format" in args else None
check(fmt in ("json", "logfmt"), "a single-line --log-format (json or logfmt)", fmt)
help_text = subprocess.run([daemon, "--help"], capture_output=True, text=True).stdout
for a in args:
    if a.startswith("--"):
        check(a in help_text, f"the daemon knows {a} (--help)")
with open(os.path.join(kdir, "daemonset.yaml")) as f:
    ds_lines = f.read().splitlines()


def commented(lines, key_regex, what):
    """Every line matching key_regex has a comment line right above it (or
    above a run of such keys' own comment block)."""
    import re
    for i, line in enumerate(lines):
        if re.match(key_regex, line):
            above = lines[i - 1].strip() if i else ""
            check(above.startswith("#"), f"{what}: a comment says why: {line.strip()}")


commented(ds_lines, r"^\s+(privileged|runAsUser|readOnlyRootFilesystem|allowPrivilegeEscalation|hostPID|hostNetwork):",
          "daemonset.yaml")
# The metrics file lands on the host, where node_exporter's textfile collector reads it.
tf = metrics.get("textfile", "")
m, hp = host_path_of(tf) if tf else (None, None)
check(hp == "/run/oomguard/oomguard.prom", "metrics textfile is on the host's /run/oomguard (node-exporter.md)",
      f"{tf} -> {hp}")
check(m is not None and not m.get("readOnly", False), "the metrics directory is mounted writable")

# Every YAML file parses; kustomizations refer to existing files.
import glob
for p in sorted(glob.glob(os.path.join(kdir, "**", "*.yaml"), recursive=True)):
    try:
        with open(p) as f:
            list(yaml.safe_load_all(f))
        check(True, f"{os.path.relpath(p, kdir)} parses")
    except yaml.YAMLError as e:
        check(False, f"{os.path.relpath(p, kdir)} parses", str(e))
for kfile in sorted(glob.glob(os.path.join(kdir, "**", "kustomization.yaml"), recursive=True)):
    kd = os.path.dirname(kfile)
    with open(kfile) as f:
        k = yaml.safe_load(f)
    rel = os.path.relpath(kfile, kdir)
    refs = list(k.get("resources", [])) + list(k.get("components", []) or [])
    refs += [p["path"] for p in k.get("patches", []) if "path" in p]
    check(bool(refs), f"{rel} refers to something")
    for r in refs:
        check(os.path.exists(os.path.join(kd, r)), f"{rel}: {r} exists")
with open(os.path.join(kdir, "kustomization.yaml")) as f:
    kz = yaml.safe_load(f)
images = {i["name"]: i for i in kz.get("images", [])}
check(c.get("image") in images, "kustomization.yaml images: overrides the DaemonSet's image", c.get("image"))
check("components:" in open(os.path.join(kdir, "kustomization.yaml")).read()
      and os.path.exists(os.path.join(kdir, "capabilities", "kustomization.yaml")),
      "kustomization.yaml offers the capabilities component")
with open(os.path.join(kdir, "capabilities", "securitycontext.yaml")) as f:
    cap_text = f.read()
cap_lines = cap_text.splitlines()
commented(cap_lines, r"^\s+- [A-Z_]+$", "capabilities/securitycontext.yaml")
cap = yaml.safe_load(cap_text)["spec"]["template"]["spec"]["containers"][0]["securityContext"]
check(cap.get("privileged") is False and cap["capabilities"]["drop"] == ["ALL"],
      "the capabilities variant drops ALL and is not privileged")
import shutil
if shutil.which("kubectl"):
    r = subprocess.run(["kubectl", "kustomize", kdir], capture_output=True, text=True)
    check(r.returncode == 0, "kubectl kustomize renders the base", r.stderr.strip())
    out = list(yaml.safe_load_all(r.stdout)) if r.returncode == 0 else []
    rds = next((d for d in out if d and d.get("kind") == "DaemonSet"), {})
    img = rds.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [{}])[0].get("image", "")
    check(img == images.get("oomguard", {}).get("newName", "") + ":" + str(images.get("oomguard", {}).get("newTag", "")),
          "the rendered DaemonSet uses the images: override", img)
    with tempfile.TemporaryDirectory() as t:
        shutil.copytree(kdir, os.path.join(t, "k"))
        kp = os.path.join(t, "k", "kustomization.yaml")
        with open(kp) as f:
            text = f.read().replace("# components:", "components:").replace("#   - capabilities", "  - capabilities")
        with open(kp, "w") as f:
            f.write(text)
        r = subprocess.run(["kubectl", "kustomize", os.path.join(t, "k")], capture_output=True, text=True)
        check(r.returncode == 0, "kubectl kustomize renders the capabilities variant", r.stderr.strip())
        out = list(yaml.safe_load_all(r.stdout)) if r.returncode == 0 else []
        rds = next((d for d in out if d and d.get("kind") == "DaemonSet"), {})
        sc = rds.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [{}])[0].get("securityContext", {})
        check(sc.get("privileged") is False and "IPC_LOCK" in sc.get("capabilities", {}).get("add", []),
              "the rendered variant is not privileged and adds IPC_LOCK", sc)
else:
    print("SKIP: kubectl not installed, kustomizations not rendered")

# The kill-cgroup component (issue 13): hostPID, the host cgroupfs read-write,
# the drop-in key projected into <config dir>/oomguard.d. Checked on the patch
# files, then applied the way kubelet projects a ConfigMap (a timestamped dir,
# ..data and per-key symlinks) and read by the real daemon's --check-config.
kc = os.path.join(kdir, "kill-cgroup")
with open(os.path.join(kc, "daemonset.yaml")) as f:
    kds = yaml.safe_load(f)["spec"]["template"]["spec"]
with open(os.path.join(kc, "configmap.yaml")) as f:
    kcm = yaml.safe_load(f)
check(kds.get("hostPID") is True, "kill-cgroup component: hostPID: true")
kmounts = {m["name"]: m for m in kds["containers"][0].get("volumeMounts", [])}
cg_mount_path = mount_for(paths.get("cgroup") or "/nonexistent")
check(cg_mount_path is not None and kmounts.get(cg_mount_path["name"], {}).get("readOnly") is False
      and kmounts[cg_mount_path["name"]].get("mountPath") == cg_mount_path["mountPath"],
      "kill-cgroup component: the host cgroupfs mount made read-write", kmounts)
kvol = next((v for v in kds.get("volumes", []) if v["name"] == vol["name"]), {})
items = {i["key"]: i["path"] for i in kvol.get("configMap", {}).get("items", [])}
dropin_key = next(iter(kcm.get("data", {})), None)
check(items.get(key) == key, "kill-cgroup component: the main config key still projected as itself", items)
check(dropin_key is not None and items.get(dropin_key) == f"oomguard.d/{dropin_key}",
      "kill-cgroup component: its drop-in key projected into oomguard.d/", items)
check(kcm["metadata"]["name"] == cm["metadata"]["name"], "kill-cgroup component patches the base ConfigMap")
with tempfile.TemporaryDirectory() as t:
    vol_dir = os.path.join(t, "etc-oomguard")
    data = os.path.join(vol_dir, "..2026_12_02_00_00_00.000000000")
    files = {key: toml_text, dropin_key or "none.toml": kcm.get("data", {}).get(dropin_key, "")}
    for k, rel in items.items():
        os.makedirs(os.path.dirname(os.path.join(data, rel)), exist_ok=True)
        with open(os.path.join(data, rel), "w") as f:
            f.write(files.get(k, ""))
    os.symlink(os.path.basename(data), os.path.join(vol_dir, "..data"))
    for top in sorted({rel.split("/")[0] for rel in items.values()}):
        os.symlink(os.path.join("..data", top), os.path.join(vol_dir, top))
    r = subprocess.run([daemon, "--check-config", os.path.join(vol_dir, key or "oomguard.toml")],
                       capture_output=True, text=True)
    read = [l for l in r.stdout.splitlines() if l.startswith("# read ")]
    check(r.returncode == 0 and 'mode = "kill-cgroup"' in r.stdout.splitlines() and len(read) == 2,
          "kill-cgroup component: --check-config on the projected ConfigMap reads the drop-in, mode kill-cgroup",
          (r.stderr.strip() or "; ".join(read))[:400])

# Containerfile: builds from the repo and installs what the DaemonSet runs.
with open(os.path.join(kdir, "Containerfile")) as f:
    cf = f.read()
check("COPY . ." in cf and "meson setup" in cf and "meson install" in cf, "Containerfile builds the repo with meson")
binary = c.get("command", [None])[0]
check(binary is not None and f"COPY --from=build /install{binary} {binary}" in cf,
      "the image holds the binary the DaemonSet runs", binary)

print(f"{'OK' if failures == 0 else 'FAILED'}: {failures} failure(s)")
sys.exit(1 if failures else 0)
