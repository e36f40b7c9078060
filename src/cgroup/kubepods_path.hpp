// What kubelet's cgroup names mean: QoS levels, pods and containers, for both
// cgroup drivers and the common runtimes. Pure string functions (no I/O), so
// unknown and malformed names can be tested and fuzzed; they never throw.
//
//   cgroupfs: kubepods/{burstable,besteffort}/pod<uid>/<container-id>
//             kubepods/pod<uid>/<container-id>                     (Guaranteed)
//   systemd:  kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid_>.slice/<rt>-<id>.scope
//             kubepods.slice/kubepods-pod<uid_>.slice/...          (Guaranteed)
//   <rt>: cri-containerd, crio, docker; crio-conmon-<id> holds cri-o's monitor.
#pragma once

#include <string>
#include <string_view>

#include "util/result.hpp"

namespace oomguard {

enum class QosClass { Unknown, Guaranteed, Burstable, BestEffort };
// Kubernetes' spelling: "Guaranteed", "Burstable", "BestEffort", "Unknown".
const char* to_string(QosClass q);

enum class CgroupDriver { Unknown, Cgroupfs, Systemd };
const char* to_string(CgroupDriver d);

enum class ContainerRuntime { Unknown, Containerd, Crio, Docker };
// "containerd", "cri-o", "docker", "" (a bare id: containerd or docker with cgroupfs).
const char* to_string(ContainerRuntime r);

enum class KubeKind {
    Unknown,   // not something kubelet makes; `reason` says why
    QosLevel,  // burstable / besteffort level
    Pod,
    Container,
    Conmon,  // cri-o's conmon monitor process, not a container
};
const char* to_string(KubeKind k);

// The meaning of one cgroup directory name.
struct KubeName {
    KubeKind kind = KubeKind::Unknown;
    QosClass qos = QosClass::Unknown;  // QosLevel; Pod when the name carries it (systemd)
    CgroupDriver driver = CgroupDriver::Unknown;
    ContainerRuntime runtime = ContainerRuntime::Unknown;
    std::string pod_uid;       // dashed form
    std::string container_id;  // the runtime's id, without prefix/suffix
    std::string reason;        // why it is Unknown
};

// True for the kubepods cgroup itself: "kubepods", "kubepods.slice", and
// prefixed variants such as "kubelet-kubepods.slice" (kind, rootless kubelet).
bool is_kubepods_name(std::string_view name);

// A child of kubepods or of a QoS level: a QoS level or a pod.
KubeName classify_pod_level(std::string_view name);
// A child of a pod cgroup: a container (or conmon).
KubeName classify_container_level(std::string_view name);

// Pod UID from a cgroup name: underscores (systemd driver) become dashes. Accepts
// the 8-4-4-4-12 UUID form and the 32-hex-digit hashes of static pods; an
// Error naming what is wrong when malformed.
Result<std::string> normalize_pod_uid(std::string_view raw);

// A whole cgroup path (e.g. task_memcg from the kernel's OOM report). Finds the
// kubepods component anywhere in it, so kubelet's --cgroup-root prefixes and
// test parents are fine.
struct KubePath {
    bool in_kubepods = false;
    std::string kubepods;               // the path up to and including the kubepods component
    KubeKind kind = KubeKind::Unknown;  // of the deepest component understood
    QosClass qos = QosClass::Unknown;
    CgroupDriver driver = CgroupDriver::Unknown;
    ContainerRuntime runtime = ContainerRuntime::Unknown;
    std::string pod_uid;
    std::string container_id;
    std::string reason;  // what could not be classified
};
KubePath classify_cgroup_path(std::string_view path);

}  // namespace oomguard
