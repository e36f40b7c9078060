// The one victim vocabulary: a cgroup as oomguard names it (CgroupRef), and an
// OOM kill the kernel reported, mapped to its pod and container (OomKill). The
// kmsg parser's raw KernelOomEvent becomes an OomKill in the cgroup code; the
// state, the journal entries, D-Bus, Dump and oomguardctl all read this one.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace oomguard {

// How every message shows a container: its name, else the first 12 characters
// of its id (as crictl shows ids), else the last component of its cgroup path;
// "" when all three are empty.
std::string container_label(std::string_view name, std::string_view id, std::string_view path);

// A cgroup and the pod and container it belongs to. Fields are "" when unknown
// (not a kubepods cgroup, no pod log directory).
struct CgroupRef {
    std::string path;  // below the cgroup root, e.g. "/kubepods/burstable/pod<uid>/<cid>"
    std::string pod_uid, pod_namespace, pod_name;
    std::string container_name, container_id;
    std::string qos;  // "Guaranteed", "Burstable", "BestEffort" or ""

    // The pod's name, or its uid when the name is unknown.
    const std::string& pod() const { return pod_name.empty() ? pod_uid : pod_name; }
    // The container's label (see container_label), "" when neither its name nor
    // its id is known: the path of a pod or a system cgroup names no container.
    std::string container() const { return container_label(container_name, container_id, {}); }
    bool operator==(const CgroupRef&) const = default;
};

struct OomKill {
    uint64_t realtime_usec = 0;  // when oomguard read the report
    int64_t pid = -1;            // -1: none
    std::string task;            // comm of the killed task
    CgroupRef cgroup;            // path: the kernel's task_memcg
    std::string constraint;      // CONSTRAINT_NONE (node-wide, e.g. sysrq), CONSTRAINT_MEMCG, ...
    bool memcg = false;          // the cgroup hit its own limit
    bool after_trigger = false;  // followed oomguard's trigger
    uint64_t rss_bytes = 0;      // the victim's RSS at the kill (all tasks of an oom.group)

    bool operator==(const OomKill&) const = default;
};

}  // namespace oomguard
