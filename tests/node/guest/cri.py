"""The node lab's container runtime (issue 13): containerd 1.6 and runc from
Debian with the CRI plugin and SystemdCgroup = true, driven over its CRI gRPC
socket the way kubelet drives it. Runs inside the VM (tests/node/guest/driver.py).

- Images are built here as OCI layouts (no registry: the sandbox image and a
  busybox-static workload image, and the oomguard image from
  packaging/container/Containerfile) and imported with `ctr -n k8s.io images import`.
- Kubelet is played by Kubelet below: the pod slice (a transient systemd slice
  with the pod's memory limit, as kubelet's systemd cgroup manager makes it),
  RunPodSandbox with kubelet's cgroup_parent, log_directory, labels and
  annotations, CreateContainer with log_path <container>/<restart>.log,
  kubelet's oom_score_adj for the QoS, memory limits and memory.oom.group=1,
  StartContainer, and the /var/log/containers symlink.
The gRPC messages are cri_api_pb2 (protoc on the host, from cri_api.proto); the
unary stubs are written here with channel.unary_unary.
"""
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
import uuid

import grpc

import cri_api_pb2 as api

SOCK = "/run/containerd/containerd.sock"
PAUSE_IMAGE = "lab.local/pause:1"
WORKLOAD_IMAGE = "docker.io/library/lab-busybox:1"
CG = "/sys/fs/cgroup"

CONFIG = f"""\
# The node lab's containerd: the CRI plugin with runc's systemd cgroup driver,
# as kubelet's systemd driver needs; the sandbox image is the lab's own.
version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = true
"""

# kubelet's QoS parents (systemd driver names).
QOS_PARENT = {"Guaranteed": "kubepods", "Burstable": "kubepods-burstable", "BestEffort": "kubepods-besteffort"}


def run(cmd, timeout=120, input=None):
    try:
        return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(cmd, 124, e.stdout or "", f"timed out after {timeout} s")


# --- OCI images ------------------------------------------------------------------

def _blob(layout, data):
    d = hashlib.sha256(data).hexdigest()
    os.makedirs(f"{layout}/blobs/sha256", exist_ok=True)
    with open(f"{layout}/blobs/sha256/{d}", "wb") as f:
        f.write(data)
    return f"sha256:{d}", len(data)


def layer_tar(entries):
    """An uncompressed layer from (path in image, source file | None for a dir |
    ('symlink', target), mode). Owner root, fixed mtime: reproducible."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, src, mode in entries:
            ti = tarfile.TarInfo(path.lstrip("/"))
            ti.mtime = 0
            ti.uid = ti.gid = 0
            if src is None:
                ti.type, ti.mode = tarfile.DIRTYPE, mode or 0o755
                tar.addfile(ti)
            elif isinstance(src, tuple):
                ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, src[1], 0o777
                tar.addfile(ti)
            else:
                with open(src, "rb") as f:
                    data = f.read()
                ti.size, ti.mode = len(data), mode or (os.stat(src).st_mode & 0o7777)
                tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def oci_archive(out_tar, name, layers, entrypoint=None, cmd=None, env=None, labels=None):
    """An OCI image layout (one manifest, linux/amd64) in a tar, named for
    containerd with io.containerd.image.name. layers: raw uncompressed tars."""
    layout = out_tar + ".d"
    shutil.rmtree(layout, ignore_errors=True)
    os.makedirs(layout)
    descs, diff_ids = [], []
    for data in layers:
        digest, size = _blob(layout, data)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": size})
        diff_ids.append(digest)  # uncompressed: the diff id is the blob's digest
    config = {"architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
              "config": {"Env": env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                         **({"Entrypoint": entrypoint} if entrypoint else {}),
                         **({"Cmd": cmd} if cmd else {}), **({"Labels": labels} if labels else {})},
              "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": []}
    cdigest, csize = _blob(layout, json.dumps(config, sort_keys=True).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest, "size": csize},
                "layers": descs}
    mdigest, msize = _blob(layout, json.dumps(manifest, sort_keys=True).encode())
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdigest, "size": msize,
        "platform": {"architecture": "amd64", "os": "linux"},
        "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}}]}
    with open(f"{layout}/index.json", "w") as f:
        json.dump(index, f)
    with open(f"{layout}/oci-layout", "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with tarfile.open(out_tar, "w") as tar:
        for entry in sorted(os.listdir(layout)):
            tar.add(f"{layout}/{entry}", arcname=entry)
    shutil.rmtree(layout)
    return mdigest


def import_image(tar):
    r = run(["ctr", "-n", "k8s.io", "images", "import", tar], timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"ctr images import {tar}: {r.stderr.strip()[-400:]}")
    return r.stdout.strip()


BUSYBOX_APPLETS = ["sh", "sleep", "cat", "ls", "date", "stat", "test", "echo", "kill", "ps", "grep", "true"]


def build_lab_images(work, hog_static, pause_static):
    """The sandbox image (the lab's static pause) and the workload image
    (busybox-static from Debian and the static hog), imported for the CRI plugin."""
    os.makedirs(work, exist_ok=True)
    pause = layer_tar([("/pause", pause_static, 0o755)])
    oci_archive(f"{work}/pause.tar", PAUSE_IMAGE, [pause], entrypoint=["/pause"])
    entries = [("/bin", None, 0o755), ("/bin/busybox", "/bin/busybox", 0o755), ("/usr", None, 0o755),
               ("/usr/local", None, 0o755), ("/usr/local/bin", None, 0o755),
               ("/usr/local/bin/oomguard-node-hog", hog_static, 0o755), ("/tmp", None, 0o1777),
               ("/proc", None, 0o555), ("/sys", None, 0o555), ("/dev", None, 0o755), ("/etc", None, 0o755)]
    entries += [(f"/bin/{a}", ("symlink", "busybox"), 0) for a in BUSYBOX_APPLETS]
    oci_archive(f"{work}/busybox.tar", WORKLOAD_IMAGE, [layer_tar(entries)], cmd=["/bin/sh"])
    return [import_image(f"{work}/pause.tar"), import_image(f"{work}/busybox.tar")]


def containerfile_build(containerfile, context, name, out_tar):
    """Builds a Containerfile of the subset a rootfs-only image needs (FROM
    scratch, ADD/COPY of a tar or file, ENTRYPOINT, CMD, ENV, LABEL) into an
    OCI archive, the way podman/buildah would for it: each ADD a layer."""
    layers, entrypoint, cmd, env, labels = [], None, None, [], {}
    text = open(containerfile).read().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        op, _, rest = line.partition(" ")
        op, rest = op.upper(), rest.strip()
        if op == "FROM":
            if rest.split()[0] != "scratch":
                raise ValueError(f"{containerfile}: the lab builds FROM scratch only (no registry): {line}")
        elif op in ("ADD", "COPY"):
            src, dst = rest.split()
            path = os.path.join(context, src)
            if op == "ADD" and tarfile.is_tarfile(path):
                with open(path, "rb") as f:
                    layers.append(f.read())  # ADD unpacks a local tar: its members are the layer
            else:
                layers.append(layer_tar([(dst, path, None)]))
        elif op in ("ENTRYPOINT", "CMD"):
            val = json.loads(rest)
            if op == "ENTRYPOINT":
                entrypoint = val
            else:
                cmd = val
        elif op == "ENV":
            k, _, v = rest.partition("=")
            env.append(f"{k.strip()}={v.strip()}")
        elif op == "LABEL":
            k, _, v = rest.partition("=")
            labels[k.strip()] = v.strip().strip('"')
        else:
            raise ValueError(f"{containerfile}: instruction the lab's builder does not know: {op}")
    env = env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    return oci_archive(out_tar, name, layers, entrypoint=entrypoint, cmd=cmd, env=env, labels=labels)


# --- containerd ------------------------------------------------------------------

def start_containerd():
    os.makedirs("/etc/containerd", exist_ok=True)
    with open("/etc/containerd/config.toml", "w") as f:
        f.write(CONFIG)
    r = run(["systemctl", "restart", "containerd"], timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"systemctl restart containerd: {r.stderr.strip()}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if os.path.exists(SOCK):
            try:
                return Cri().version()
            except grpc.RpcError:
                pass
        time.sleep(0.5)
    raise RuntimeError("containerd's CRI socket did not answer within 60 s: " +
                       run(["journalctl", "-u", "containerd", "-n", "20", "--no-pager"]).stdout[-800:])


class Cri:
    """The unary CRI calls the lab makes, as kubelet's remote runtime makes them."""

    CALLS = {
        "RuntimeService": [("Version", "VersionRequest", "VersionResponse"),
                           ("RunPodSandbox", "RunPodSandboxRequest", "RunPodSandboxResponse"),
                           ("StopPodSandbox", "StopPodSandboxRequest", "StopPodSandboxResponse"),
                           ("RemovePodSandbox", "RemovePodSandboxRequest", "RemovePodSandboxResponse"),
                           ("PodSandboxStatus", "PodSandboxStatusRequest", "PodSandboxStatusResponse"),
                           ("CreateContainer", "CreateContainerRequest", "CreateContainerResponse"),
                           ("StartContainer", "StartContainerRequest", "StartContainerResponse"),
                           ("StopContainer", "StopContainerRequest", "StopContainerResponse"),
                           ("RemoveContainer", "RemoveContainerRequest", "RemoveContainerResponse"),
                           ("ListContainers", "ListContainersRequest", "ListContainersResponse"),
                           ("ContainerStatus", "ContainerStatusRequest", "ContainerStatusResponse"),
                           ("ExecSync", "ExecSyncRequest", "ExecSyncResponse")],
        "ImageService": [("ImageStatus", "ImageStatusRequest", "ImageStatusResponse")],
    }

    def __init__(self, sock=SOCK):
        self.channel = grpc.insecure_channel(f"unix://{sock}")
        self.stubs = {}
        for service, calls in self.CALLS.items():
            for method, req, resp in calls:
                self.stubs[method] = (getattr(api, req), self.channel.unary_unary(
                    f"/runtime.v1.{service}/{method}", request_serializer=getattr(api, req).SerializeToString,
                    response_deserializer=getattr(api, resp).FromString))

    def call(self, method, timeout=120, **fields):
        req_type, stub = self.stubs[method]
        return stub(req_type(**fields), timeout=timeout)

    def version(self):
        v = self.call("Version", timeout=10, version="v1")
        return f"{v.runtime_name} {v.runtime_version} (CRI {v.runtime_api_version})"


# --- kubelet's part ----------------------------------------------------------------

def burstable_adj(mem_request, capacity):
    return max(2, min(999, 1000 - (1000 * mem_request) // capacity))


class Container:
    def __init__(self, name, args, request=0, limit=0, command=None, privileged=False, readonly_rootfs=False,
                 mounts=(), envs=None, image=WORKLOAD_IMAGE, cpu_shares=2, cpu_quota=0, cpu_period=0,
                 oom_score_adj=None, run_as_user=None):
        self.name, self.args, self.request, self.limit = name, list(args), request, limit
        self.run_as_user = run_as_user
        self.command = command or ["/usr/local/bin/oomguard-node-hog"]
        self.privileged, self.readonly_rootfs, self.mounts = privileged, readonly_rootfs, list(mounts)
        self.envs, self.image = envs or {}, image
        self.cpu_shares, self.cpu_quota, self.cpu_period = cpu_shares, cpu_quota, cpu_period
        self.oom_score_adj = oom_score_adj
        self.id = None
        self.status = None

    def log(self, pod):
        return f"{pod.log_directory}/{self.name}/0.log"

    def link(self, pod):
        return f"/var/log/containers/{pod.name}_{pod.namespace}_{self.name}-{self.id}.log"


class Pod:
    """One pod as kubelet runs it over the CRI with the systemd cgroup driver."""

    def __init__(self, cri, namespace, name, qos, containers, uid=None, host_pid=False, host_network=True,
                 labels=None, annotations=None, pod_memory_limit=None):
        self.cri, self.namespace, self.name, self.qos = cri, namespace, name, qos
        self.containers = containers
        self.uid = uid or str(uuid.uuid4())
        self.host_pid, self.host_network = host_pid, host_network
        self.slice = f"{QOS_PARENT[qos]}-pod{self.uid.replace('-', '_')}.slice"
        parts = ["kubepods.slice"] + ([] if qos == "Guaranteed" else [f"{QOS_PARENT[qos]}.slice"]) + [self.slice]
        self.cgroup = "/" + "/".join(parts)
        self.log_directory = f"/var/log/pods/{namespace}_{name}_{self.uid}"
        self.labels = {"io.kubernetes.pod.name": name, "io.kubernetes.pod.namespace": namespace,
                       "io.kubernetes.pod.uid": self.uid, **(labels or {})}
        self.annotations = {"kubernetes.io/config.source": "api",
                            "kubernetes.io/config.seen": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            **(annotations or {})}
        limits = [c.limit for c in containers]
        self.pod_memory_limit = pod_memory_limit if pod_memory_limit is not None else \
            (sum(limits) if qos != "BestEffort" and all(limits) else 0)
        self.sandbox_id = None
        self.config = None

    def scope(self, cid):
        return f"{self.cgroup}/cri-containerd-{cid}.scope"

    def sandbox_config(self):
        ns = api.NamespaceOption(network=api.NODE if self.host_network else api.POD,
                                 pid=api.NODE if self.host_pid else api.CONTAINER, ipc=api.POD)
        return api.PodSandboxConfig(
            metadata=api.PodSandboxMetadata(name=self.name, uid=self.uid, namespace=self.namespace, attempt=0),
            # kubelet sets no hostname for a pod in the node's network (and UTS) namespace.
            hostname="" if self.host_network else self.name, log_directory=self.log_directory, labels=self.labels, annotations=self.annotations,
            linux=api.LinuxPodSandboxConfig(
                cgroup_parent=self.slice,
                security_context=api.LinuxSandboxSecurityContext(
                    namespace_options=ns, privileged=any(c.privileged for c in self.containers))))

    def make_slice(self):
        """kubelet's pod cgroup: a transient slice unit with the pod's limits
        (the QoS slices above it are created by systemd on demand)."""
        props = [("Description", "s", f"libcontainer container {self.slice}"), ("MemoryAccounting", "b", "true")]
        if self.pod_memory_limit:
            props.append(("MemoryMax", "t", str(self.pod_memory_limit)))
        args = ["busctl", "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                "org.freedesktop.systemd1.Manager", "StartTransientUnit", "ssa(sv)a(sa(sv))", self.slice, "replace",
                str(len(props))]
        for k, sig, v in props:
            args += [k, sig, v]
        args.append("0")
        r = run(args, timeout=30)
        if r.returncode != 0 and "already exists" not in r.stderr:
            raise RuntimeError(f"StartTransientUnit {self.slice}: {r.stderr.strip()}")

    def container_config(self, c, capacity):
        adj = c.oom_score_adj
        if adj is None:
            adj = {"Guaranteed": -997, "BestEffort": 1000}.get(self.qos) or burstable_adj(c.request, capacity)
        res = api.LinuxContainerResources(cpu_shares=c.cpu_shares, cpu_period=c.cpu_period, cpu_quota=c.cpu_quota,
                                          memory_limit_in_bytes=c.limit, oom_score_adj=adj,
                                          unified={"memory.oom.group": "1"})
        sc = api.LinuxContainerSecurityContext(
            privileged=c.privileged, readonly_rootfs=c.readonly_rootfs,
            **({"run_as_user": api.Int64Value(value=c.run_as_user)} if c.run_as_user is not None else {}),
            namespace_options=api.NamespaceOption(network=api.NODE if self.host_network else api.POD,
                                                  pid=api.NODE if self.host_pid else api.CONTAINER, ipc=api.POD))
        return api.ContainerConfig(
            metadata=api.ContainerMetadata(name=c.name, attempt=0), image=api.ImageSpec(image=c.image),
            command=c.command, args=c.args, envs=[api.KeyValue(key=k, value=v) for k, v in c.envs.items()],
            mounts=[api.Mount(container_path=m["container_path"], host_path=m["host_path"],
                              readonly=m.get("readonly", False)) for m in c.mounts],
            labels={"io.kubernetes.container.name": c.name, "io.kubernetes.pod.name": self.name,
                    "io.kubernetes.pod.namespace": self.namespace, "io.kubernetes.pod.uid": self.uid},
            annotations={"io.kubernetes.container.restartCount": "0",
                         "io.kubernetes.container.terminationMessagePath": "/dev/termination-log"},
            log_path=f"{c.name}/0.log", linux=api.LinuxContainerConfig(resources=res, security_context=sc))

    def start(self, capacity, links=True, only=None):
        """RunPodSandbox, then each container: CreateContainer, StartContainer,
        the /var/log/containers symlink (links=False: none, as on a node whose
        kubelet does not make them)."""
        os.makedirs(self.log_directory, mode=0o755, exist_ok=True)
        self.make_slice()
        self.config = self.sandbox_config()
        self.sandbox_id = self.cri.call("RunPodSandbox", config=self.config).pod_sandbox_id
        for c in self.containers:
            if only is not None and c.name not in only:
                continue
            self.start_container(c, capacity, links)
        return self

    def start_container(self, c, capacity, links=True):
        os.makedirs(f"{self.log_directory}/{c.name}", mode=0o755, exist_ok=True)
        c.id = self.cri.call("CreateContainer", pod_sandbox_id=self.sandbox_id, config=self.container_config(c, capacity),
                             sandbox_config=self.config).container_id
        self.cri.call("StartContainer", container_id=c.id)
        if links:
            os.makedirs("/var/log/containers", exist_ok=True)
            if not os.path.lexists(c.link(self)):
                os.symlink(c.log(self), c.link(self))
        c.status = self.cri.call("ContainerStatus", container_id=c.id).status
        return c

    def container(self, name):
        return next(c for c in self.containers if c.name == name)

    def status(self, name):
        c = self.container(name)
        c.status = self.cri.call("ContainerStatus", container_id=c.id).status
        return c.status

    def path(self, name, f=""):
        return CG + self.scope(self.container(name).id) + ("/" + f if f else "")

    def pids(self, name):
        try:
            with open(self.path(name, "cgroup.procs")) as f:
                return [int(p) for p in f.read().split()]
        except OSError:
            return []

    def wait_log(self, name, pattern, timeout):
        """Waits for a line of the container's log (CRI format: '<time> <stream> <P|F> <text>')."""
        deadline = time.monotonic() + timeout
        path = self.container(name).log(self)
        while time.monotonic() < deadline:
            try:
                text = open(path).read()
            except OSError:
                text = ""
            m = re.search(pattern, text, re.M)
            if m:
                return m
            time.sleep(0.2)
        return None

    def stop(self):
        if not self.sandbox_id:
            return
        try:
            self.cri.call("StopPodSandbox", pod_sandbox_id=self.sandbox_id, timeout=60)
            self.cri.call("RemovePodSandbox", pod_sandbox_id=self.sandbox_id, timeout=60)
        except grpc.RpcError:
            pass
        for c in self.containers:
            if c.id and os.path.lexists(c.link(self)):
                os.unlink(c.link(self))
        shutil.rmtree(self.log_directory, ignore_errors=True)
        run(["systemctl", "stop", self.slice], timeout=30)
        self.sandbox_id = None
