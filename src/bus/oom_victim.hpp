// The last kernel OOM victim as Dump() and the LastVictim property show it: a
// view of DaemonState::last_oom_kill (the daemon owns the fact).
#pragma once

#include <cstdint>
#include <string>

#include "daemon.hpp"

namespace oomguard {

struct OomVictim {
    uint32_t pid = 0;
    std::string name;        // comm of the killed task
    std::string cgroup;      // task_memcg
    std::string namespace_;  // resolved from the cgroup; empty outside Kubernetes
    std::string pod;
    uint64_t realtime_usec = 0;  // when the daemon read the report

    static OomVictim from(const OomKillInfo& k) {
        OomVictim v;
        v.pid = static_cast<uint32_t>(k.pid);
        v.name = k.task;
        v.cgroup = k.cgroup;
        v.namespace_ = k.pod_namespace;
        v.pod = k.pod_name.empty() ? k.pod_uid : k.pod_name;
        v.realtime_usec = k.realtime_usec;
        return v;
    }
};

}  // namespace oomguard
