// The kill-cgroup action: choose the heaviest eligible container and kill its
// cgroup. Victims go in QoS order (BestEffort, Burstable, then Guaranteed only
// when allowed), heaviest pod first within a class; excluded namespaces are
// skipped, and nothing outside kubepods is ever touched.
#pragma once

#include <string>
#include <vector>

#include "cgroup/cgroup_monitor.hpp"

namespace oomguard {

struct KillPolicy {
    std::vector<std::string> exclude_namespaces{"kube-system"};
    bool kill_guaranteed = false;
};

struct VictimChoice {
    bool found = false;
    CgroupInfo pod;
    CgroupInfo container;
    std::vector<std::string> skipped;  // "<pod>: <why>", the first few
    std::string why_none;              // when !found
};

// Uses the monitor's current ranking (refresh it first).
VictimChoice choose_victim(CgroupMonitor& monitor, const KillPolicy& policy);

struct KillOutcome {
    bool ok = false;       // the cgroup is empty now
    std::string method;    // "cgroup.kill" or "SIGKILL to cgroup.procs"
    size_t signalled = 0;  // SIGKILLs sent (v1)
    size_t rounds = 0;
    Duration elapsed{0};
    std::string error;
};

// Kills every process of a container cgroup: v2 writes "1" to cgroup.kill; v1
// (or a kernel without cgroup.kill) SIGKILLs every pid in cgroup.procs of the
// cgroup and its descendants, repeating until empty, for at most `bound`.
// Refuses anything that is not a container cgroup under the monitor's kubepods.
KillOutcome kill_container_cgroup(CgroupMonitor& monitor, const CgroupInfo& container,
                                  Duration bound = std::chrono::milliseconds(500));

// The kill itself, on an open cgroup directory (no checks: kill_container_cgroup
// makes them). `label` names the cgroup in errors.
KillOutcome kill_cgroup_at(int dirfd, CgroupVersion version, const std::string& label,
                           Duration bound = std::chrono::milliseconds(500));

// True when `path` is strictly below `kubepods` and has no "." or ".." parts.
bool path_inside(std::string_view path, std::string_view kubepods);

}  // namespace oomguard
