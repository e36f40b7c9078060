// A kernel OOM kill as reported in /dev/kmsg ("oom-kill:... task_memcg=...",
// "Killed process <pid> (<name>)"), and the listener the kmsg reader calls.
// Header-only and free of sdbus-c++, so the cgroup code in oomguard_core can use it.
#pragma once

#include <cstdint>
#include <string>

namespace oomguard {

struct OomVictim {
    uint32_t pid = 0;
    std::string name;        // comm of the killed task
    std::string cgroup;      // task_memcg
    std::string namespace_;  // resolved from the cgroup; empty outside Kubernetes
    std::string pod;
    uint64_t realtime_usec = 0;  // when the daemon read the report; 0: fill in now
};

class VictimListener {
public:
    virtual ~VictimListener() = default;
    // Called once per kill, after DaemonState::kernel_oom_kills_total was counted.
    virtual void on_victim(const OomVictim& victim) = 0;
};

}  // namespace oomguard
