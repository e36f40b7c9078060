// Who the kernel's OOM killer would pick now (issue 14), as the background
// predictor last saw it, named like every other cgroup (CgroupRef); and the
// node audit's active findings, by check. Both live in DaemonState; the
// predictor and the audit report them through Host.
#pragma once

#include <array>
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

// The node audit's checks, in AuditKind's order (src/audit/node_audit.hpp).
inline constexpr std::array<const char*, 6> kAuditChecks = {
    "critical-oom-score-adj", "critical-outranks-pods", "no-allocatable",
    "allocatable-is-memtotal", "oom-group-off", "panic-on-oom"};

// Active findings per check: a fixed array, so that copying the state (the
// D-Bus snapshot, once a second) never allocates.
struct AuditCounts {
    std::array<uint32_t, kAuditChecks.size()> findings{};
    bool any() const {
        for (uint32_t n : findings)
            if (n) return true;
        return false;
    }
    bool operator==(const AuditCounts&) const = default;
};

}  // namespace oomguard
