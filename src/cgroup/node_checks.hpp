// What the cgroup code says about the node at start and on reload: the
// hierarchy, cgroups under kubepods that are not kubelet's, whether node
// allocatable is enforced, whether kill-cgroup can work here, and the heaviest
// cgroups. Reloads repeat a finding only when it changed, or once a minute (a
// SIGHUP storm must not flood journald).
#pragma once

#include <string>

#include "cgroup/cgroup_monitor.hpp"
#include "config/config.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"

namespace oomguard {

class NodeChecks {
public:
    static constexpr Duration kRepeatEvery = std::chrono::minutes(1);

    NodeChecks(Log& log, const Clock& clock) : log_(log), clock_(clock) {}

    // `first`: the start, not a reload (every finding is logged then).
    void log_hierarchy(const CgroupMonitor& m);
    void log_unclassified_if_new(const CgroupMonitor& m);
    void check_allocatable(CgroupMonitor& m, const Config::Kubernetes& k8s, uint64_t mem_total,
                           bool first);
    void check_kill_mode(const CgroupMonitor& m, const Config& config);
    void log_heaviest(const HeaviestReport& r, size_t top_n, bool first);

private:
    struct Repeat {
        std::string seen;
        Duration at{0};
        bool due(const std::string& what, Duration now, bool first);
    };
    Log& log_;
    const Clock& clock_;
    std::string unclassified_seen_;
    Repeat alloc_log_, heaviest_log_;
};

}  // namespace oomguard
