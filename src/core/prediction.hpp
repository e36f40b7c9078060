// Who the kernel's OOM killer would pick now (issue 14), as the background
// predictor last saw it, named like every other cgroup (CgroupRef); and the
// node audit's active findings, by check. Both live in DaemonState; the
// predictor and the audit report them through Host.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/oom_kill.hpp"
#include "util/units.hpp"

namespace oomguard {

struct PredictedTask {
    int64_t pid = 0;  // 0: no prediction (none yet, or no killable task)
    std::string comm;
    int64_t oom_score = 0;
    CgroupRef cgroup;
    bool tied = false;   // another task had the same oom_score
    Duration at{0};      // monotonic time of the scan
    uint32_t tasks = 0;  // tasks the scan read
    bool operator==(const PredictedTask&) const = default;
};

struct AuditCount {
    std::string check;  // "critical-oom-score-adj", ... (AuditKind's names)
    uint32_t findings = 0;
    bool operator==(const AuditCount&) const = default;
};

}  // namespace oomguard
