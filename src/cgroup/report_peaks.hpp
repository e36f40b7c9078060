// Why: the trigger's report is read after the trigger (trigger first, then log),
// and the kernel's OOM kill races those reads: sysrq 'f' only queues the kill on
// a workqueue, a kill-cgroup SIGKILL frees memory as the tasks exit. A read a
// few milliseconds late finds the victim's memory going, and names its sibling
// (issue 13: container "helper" instead of "leaker"). So the last report from
// just before the trigger is merged in: each pod and container keeps the larger
// of its two working sets. Cost: a walk of two lists of at most kTopN.
#pragma once

#include "cgroup/cgroup_monitor.hpp"

namespace oomguard {

struct PeakMerge {
    size_t pods = 0;           // pods whose figures came from `before`
    size_t containers = 0;     // containers whose figures came from `before`
    bool top_changed = false;  // after.top[0] is another pod now: list its containers anew
};

// Pods matched by cgroup path (a pod of `before` missing from `after`, e.g. one
// that fell out of the top after the kill, comes back), re-sorted heaviest
// first and cut to `top_n`. Containers merged when both reports list the
// containers of the same pod. Pure.
PeakMerge merge_peaks(const HeaviestReport& before, HeaviestReport& after, size_t top_n);

// The containers only: `before_containers` were listed for the same pod.
size_t merge_container_peaks(const std::vector<CgroupInfo>& before_containers,
                             std::vector<CgroupInfo>& containers);

}  // namespace oomguard
