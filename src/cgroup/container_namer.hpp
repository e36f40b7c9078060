// ContainerNamer: the one rule that names the containers of a pod, used by the
// ranking (CgroupMonitor::containers) and by the kernel OOM victim report
// (attribute_oom_kill). In order:
//  1. kubelet's /var/log/containers link for the container id, when it names
//     this pod (a link naming another pod is stale and ignored);
//  2. the runtime's own state (containerd's or CRI-O's bundle config.json),
//     when it does not name another pod UID; it also tells sandboxes apart and
//     names a pod whose /var/log/pods directory is missing;
//  3. the pod's only log directory, when that is unambiguous: the pod logs
//     exactly one container, no container of the pod is named otherwise, and
//     exactly one container (not the sandbox) is left unnamed.
// Why one rule: the two copies this replaces differed in step 3 (the victim
// report named any unnamed container after the only log directory, even the
// pause sandbox or a second, unlogged container).
// Cost: step 1 is a hash lookup (a re-list at most once per min_relist), step 2
// one small file read per container the links did not name, cached by id.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cgroup/pod_names.hpp"
#include "cgroup/runtime_state.hpp"

namespace oomguard {

enum class NameSource { None, LogLink, RuntimeState, OnlyLogDir };
const char* to_string(NameSource s);

// One container cgroup of a pod, named in place.
struct ContainerSlot {
    std::string id;        // the runtime's container id ("" when not a container)
    bool sandbox = false;  // in: the pause sandbox; out: also set by the runtime state
    // out:
    std::string name;
    NameSource source = NameSource::None;
    std::string note;  // why it is unnamed, or how it was named
    // The pod's names from the runtime state ("" when it did not say).
    std::string pod_namespace, pod_name;
};

class ContainerNamer {
public:
    ContainerNamer(PodNameResolver& logs, const RuntimeStateReader& runtime)
        : logs_(logs), runtime_(runtime) {}

    // Names the container cgroups of pod `pod_uid` (all of them: step 3 needs
    // to see the siblings).
    void name(std::string_view pod_uid, std::vector<ContainerSlot>& slots);

    // The runtime state of one id (cached when found; a miss is retried).
    Result<RuntimeNames> runtime_names(std::string_view id);
    void clear_cache() { cache_.clear(); }

    static constexpr size_t kCacheMax = 4096;

private:
    PodNameResolver& logs_;
    const RuntimeStateReader& runtime_;
    std::unordered_map<std::string, RuntimeNames> cache_;
};

}  // namespace oomguard
