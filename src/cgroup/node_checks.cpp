#include "cgroup/node_checks.hpp"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <syslog.h>
#include <unistd.h>

#include "cgroup/cgroup_killer.hpp"
#include "cgroup/heaviest_format.hpp"

namespace oomguard {

// A kubepods limit at or above this share of MemTotal reserves nothing.
constexpr uint64_t kAllocatableAllPercent = 98;

bool NodeChecks::Repeat::due(const std::string& what, Duration now, bool first) {
    if (!first && what == seen && now - at < kRepeatEvery) return false;
    seen = what;
    at = now;
    return true;
}

void NodeChecks::log_hierarchy(const CgroupMonitor& m) {
    log_.log(Event::Info, LOG_INFO,
             "cgroups: " + m.hierarchy().layout +
                 (m.kubernetes() ? ", kubepods at " + m.kubepods_path() + " (" +
                                       to_string(m.driver()) + " driver)"
                                 : ""));
}

void NodeChecks::log_unclassified_if_new(const CgroupMonitor& m) {
    const auto& u = m.unclassified();
    std::string sig;
    for (const auto& e : u) sig += e.path + "\n";
    if (sig == unclassified_seen_) return;
    unclassified_seen_ = sig;
    if (u.empty()) return;
    std::string msg = std::to_string(u.size()) + " cgroup(s) under " + m.kubepods_path() +
                      " are not kubelet's and are left out of the ranking:";
    for (size_t i = 0; i < u.size() && i < 5; ++i) msg += "\n  " + u[i].path + ": " + u[i].reason;
    if (u.size() > 5) msg += "\n  (" + std::to_string(u.size() - 5) + " more)";
    log_.log(Event::Info, LOG_NOTICE, msg, {{"OOMGUARD_UNCLASSIFIED", std::to_string(u.size())}});
}

void NodeChecks::check_allocatable(CgroupMonitor& m, const Config::Kubernetes& k8s,
                                   uint64_t mem_total, bool first) {
    auto a = m.allocatable();
    // The finding, not the numbers around it: logged again when it changes.
    const std::string error = a.error ? a.error->message : std::string();
    const std::string finding = std::to_string(a.kubernetes) + std::to_string(a.limit_known) +
                                error + a.path +
                                (a.limit ? std::to_string(*a.limit) : std::string("max"));
    if (!alloc_log_.due(finding, clock_.now(), first)) return;
    if (!a.kubernetes) {
        log_.log(
            Event::Info, LOG_INFO,
            "no kubepods cgroup under " + m.hierarchy().memory_root +
                (k8s.kubepods_cgroup.empty() ? "" : " (looked for " + k8s.kubepods_cgroup + ")") +
                ": not a Kubernetes node, ranking the top-level cgroups instead");
        return;
    }
    if (!a.limit_known) {
        log_.log(Event::Info, LOG_WARNING, "node allocatable check: " + error);
        return;
    }
    // kubelet sets the kubepods limit to capacity - kubeReserved - systemReserved:
    // a limit of about MemTotal reserves nothing for the system.
    if (a.limit && mem_total && *a.limit >= mem_total / 100 * kAllocatableAllPercent) {
        log_.log(
            Event::NoAllocatable, LOG_WARNING,
            a.path + " is limited to " + format_bytes(*a.limit) + ", " +
                std::to_string(*a.limit * 100 / mem_total) + "% of MemTotal " +
                format_bytes(mem_total) +
                ": kubelet reserves nothing for the system (no --kube-reserved/--system-reserved), "
                "so pods can take all of the node's memory; oomguard is then the last line of "
                "defence.",
            {{"OOMGUARD_CGROUP", a.path},
             {"OOMGUARD_KUBEPODS_LIMIT", std::to_string(*a.limit)},
             {"OOMGUARD_KUBEPODS_LIMIT_BYTES", std::to_string(*a.limit)},
             {"OOMGUARD_MEM_TOTAL_BYTES", std::to_string(mem_total)}});
        return;
    }
    if (a.limit) {
        std::string share =
            mem_total ? " (" + std::to_string(*a.limit * 100 / mem_total) + "% of MemTotal)" : "";
        log_.log(Event::Info, LOG_INFO,
                 "node allocatable is enforced: " + a.path + " is limited to " +
                     format_bytes(*a.limit) + share,
                 {{"OOMGUARD_KUBEPODS_LIMIT_BYTES", std::to_string(*a.limit)},
                  {"OOMGUARD_CGROUP", a.path}});
        return;
    }
    log_.log(Event::NoAllocatable, LOG_WARNING,
             a.path +
                 " has no memory limit: kubelet does not enforce node allocatable for pods "
                 "(--enforce-node-allocatable=pods with --kube-reserved/--system-reserved). Pods "
                 "can then take "
                 "all of the node's memory, leaving none for the kubelet, the container runtime "
                 "and the system; "
                 "the node may hang or the kernel may kill system daemons before kubelet's "
                 "eviction reacts. "
                 "oomguard is then the last line of defence.",
             {{"OOMGUARD_CGROUP", a.path}, {"OOMGUARD_KUBEPODS_LIMIT", "max"}});
}

void NodeChecks::check_kill_mode(const CgroupMonitor& m, const Config& config) {
    if (config.action.mode != ActionMode::KillCgroup || !m.configured()) return;
    // What kill-cgroup needs: a writable cgroupfs (cgroup.kill on v2) and, for
    // v1 or the fallback to signals, the host's pids (hostPID in a pod).
    std::string problems;
    struct statvfs vfs;
    if (m.hierarchy().version == CgroupVersion::V2 && fstatvfs(m.root_fd(), &vfs) == 0 &&
        (vfs.f_flag & ST_RDONLY))
        problems =
            m.hierarchy().memory_root + " is mounted read-only (cgroup.kill cannot be written)";
    size_t hidden = 0;
    long tasks = m.kubernetes() ? -1 : 0;
    if (m.kubernetes()) {
        const char* rel = m.kubepods_path().c_str();
        while (*rel == '/') ++rel;
        int fd = ::openat(m.root_fd(), rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            tasks = cgroup_task_count(fd, &hidden);
            ::close(fd);
        }
    }
    if (tasks > 0 && static_cast<size_t>(tasks) == hidden)
        problems += std::string(problems.empty() ? "" : "; ") + "cgroup.procs under " +
                    m.kubepods_path() +
                    " lists only pid 0: the pods' tasks are in another pid namespace (run with "
                    "hostPID: true)";
    if (problems.empty()) return;
    log_.log(Event::SensorError, LOG_ERR,
             "kill-cgroup cannot kill containers here: " + problems + "; every trigger will " +
                 (config.action.fallback_sysrq ? "fall back to sysrq"
                                               : "fail (fallback_sysrq = false)") +
                 ". Give the daemon a writable cgroupfs and the host's pid namespace, "
                 "or use mode = \"sysrq\"",
             {{"OOMGUARD_ERROR", problems}});
}

void NodeChecks::log_heaviest(const HeaviestReport& r, size_t top_n, bool first) {
    // Which cgroups lead, in order (not their bytes, which move all the time).
    std::string ranking;
    for (const auto& c : r.top) ranking += c.path + "\n";
    for (const auto& c : r.containers) ranking += c.path + "\n";
    if (!heaviest_log_.due(ranking, clock_.now(), first)) return;
    std::vector<LogField> fields;
    append_heaviest_fields(r, fields);
    std::string table = heaviest_table(r, top_n);
    log_.log(Event::Heaviest, LOG_INFO, heaviest_summary(r) + (table.empty() ? "" : "\n" + table),
             fields);
}

}  // namespace oomguard
