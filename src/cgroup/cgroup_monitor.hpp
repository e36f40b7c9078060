// CgroupMonitor: ranks the memory cgroups that matter by working set, as
// kubelet does (usage - inactive_file, so page cache does not make a pod heavy).
//
// On a Kubernetes node it ranks the pod cgroups under kubepods, then reads the
// containers of the heaviest pod only: the cost grows with pods, not containers.
// Without kubepods it ranks the top-level cgroups instead (system.slice units,
// user slices, ...), so oomguard says something useful on any host.
//
// The parts: CgroupTree (cgroup_tree.hpp) keeps the watched cgroups open and
// re-lists them only when the structure changed; rank_top (rank_top.hpp) is
// the ranking over plain structs; scan_cgroup_tasks (proc_tasks.hpp) reads a
// container's tasks from /proc (the sandbox check); ContainerNamer
// (container_namer.hpp) names containers. The monitor drives them within a
// time budget read on an injected Clock.
//
// refresh() reads every usage (cheap: ~1us) but memory.stat (~10us on v1) only
// where it can matter (rank_top): the top kExactTop are exact; the rest use
// their last inactive_file reading (`estimate`). A background refresh (sweep)
// also re-reads memory.stat of the others round-robin within its budget.
// The budget bounds the time: the previously heaviest are read first, the rest
// round-robin, and whatever is not re-read keeps its previous value (`stale`).
//
// The cgroup code reads it (report(), ranked(), containers()); D-Bus and the
// metrics see its rows only through core/heaviest_source.hpp
// (CgroupHeaviestSource). Not thread-safe: call it from the daemon's loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cgroup/cgroup_tree.hpp"
#include "cgroup/container_namer.hpp"
#include "cgroup/hierarchy.hpp"
#include "cgroup/kubepods_path.hpp"
#include "cgroup/memcg_stats.hpp"
#include "cgroup/pod_names.hpp"
#include "cgroup/rank_top.hpp"
#include "cgroup/runtime_state.hpp"
#include "core/clock.hpp"
#include "core/defaults.hpp"
#include "util/result.hpp"
#include "util/units.hpp"

namespace oomguard {

struct CgroupInfo {
    std::string
        path;  // relative to the memory hierarchy root, e.g. "/kubepods/besteffort/pod<uid>"
    CgroupKind kind = CgroupKind::Unknown;
    QosClass qos = QosClass::Unknown;
    CgroupDriver driver = CgroupDriver::Unknown;
    ContainerRuntime runtime = ContainerRuntime::Unknown;
    std::string pod_uid, pod_namespace, pod_name;  // namespace/name: "" when unknown
    std::string container_name, container_id;
    uint64_t usage = 0;
    uint64_t inactive_file = 0;
    uint64_t working_set = 0;
    bool limit_known = false;
    std::optional<uint64_t> limit;  // nullopt (with limit_known): unlimited
    int oom_group = -1;             // v2 memory.oom.group (0/1); -1 on v1 or unknown
    // Containers only (read by containers()): tasks listed in cgroup.procs
    // (-1 unknown), the lowest /proc/<pid>/oom_score_adj among them (nullopt:
    // none readable; tasks_note says why).
    long tasks = -1;
    std::optional<int> min_oom_score_adj;
    std::string tasks_note;
    bool estimate = false;  // working set from an older inactive_file reading (not in the top)
    std::string note;       // naming or classification remarks

    // "ns/name", the pod UID, or the cgroup path: the best name there is.
    std::string display_name() const;
};

struct HeaviestReport {
    bool valid = false;                  // a memory hierarchy was found (else `error`)
    bool kubernetes = false;             // false: top-level cgroups of a host without kubepods
    std::optional<Error> error;          // why not valid
    std::string layout;                  // hierarchy layout, for the journal
    std::string kubepods;                // relative path of kubepods, "" without
    std::vector<CgroupInfo> top;         // pods (or top-level cgroups), heaviest first
    std::vector<CgroupInfo> containers;  // of top[0] (Kubernetes only), heaviest first
    size_t ranked = 0;                   // cgroups in the ranking
    size_t stale = 0;                    // not re-read by the last refresh (budget)
    Duration scan_time{0};               // of the last refresh
    Duration report_time{0};             // of this report (containers, names, limits)
    uint64_t serial = 0;                 // of this report, counted by its monitor from 1
};

class CgroupMonitor {
public:
    struct Settings {
        std::string cgroup_root{defaults::kCgroupRoot};
        std::string proc_root{defaults::kProcRoot};
        std::string pod_logs_dir{defaults::kPodLogsDir};
        std::string kubepods_cgroup;      // relative to the memory root; "" finds it
        RuntimeStateRoots runtime_state;  // container names when the log links lack them
        // A full re-listing even though no watched link count changed and no
        // cgroup vanished: only a safety net (a kubepods created inside a
        // directory that is not watched, kubelet/kubepods). At 10 s it was most
        // of a calm refresh's cost, and a sixth of oomguard's idle CPU (issue 17).
        Duration structure_interval = std::chrono::seconds(60);
        bool operator==(const Settings&) const = default;
    };

    struct RefreshStats {
        size_t read = 0;       // usages re-read
        size_t stat_read = 0;  // memory.stat re-read (exact working set)
        size_t stale = 0;      // usage left with its previous value (deadline)
        size_t vanished = 0;   // gone during this refresh
        size_t errors = 0;     // unreadable for another reason
        bool restructured = false;
        bool deadline_hit = false;
        Duration elapsed{0};
    };

    struct Allocatable {
        bool kubernetes = false;
        std::string path;  // relative path of kubepods
        bool limit_known = false;
        std::optional<uint64_t> limit;  // nullopt (with limit_known): no limit
        // Why the limit is not known: the monitor is not configured, or the limit
        // file is unreadable.
        std::optional<Error> error;
    };

    // Budgets, deadlines and the structure interval are read on `clock`.
    explicit CgroupMonitor(const Clock& clock = monotonic_clock())
        : clock_(&clock), names_(clock) {}
    const Clock& clock() const { return *clock_; }
    ~CgroupMonitor();
    CgroupMonitor(const CgroupMonitor&) = delete;
    CgroupMonitor& operator=(const CgroupMonitor&) = delete;

    // Detects the hierarchy and finds kubepods. Unchanged settings keep the
    // open state. On error the monitor is unconfigured (and says why).
    Status configure(const Settings& s);
    bool configured() const { return tree_.is_open(); }
    // Why the last configure() failed: nullopt when configured, or never configured.
    const std::optional<Error>& error() const { return error_; }
    const Settings& settings() const { return settings_; }
    const CgroupHierarchy& hierarchy() const { return tree_.hierarchy(); }
    bool kubernetes() const { return tree_.kubernetes(); }
    const std::string& kubepods_path() const { return tree_.kubepods_path(); }
    CgroupDriver driver() const { return tree_.driver(); }

    static constexpr size_t kExactTop = 8;

    // Re-reads the ranking within `budget` (see above). `sweep`: spend what is
    // left of the budget refreshing the estimates (background refreshes).
    RefreshStats refresh(Duration budget, bool sweep = false);
    const RefreshStats& last_refresh() const { return last_; }

    // The heaviest `top_n` with names and limits, and the containers of the
    // heaviest pod (read now). Uses the last refresh's ranking.
    HeaviestReport report(size_t top_n);
    // The whole ranking, heaviest first, without names or limits (cheap).
    std::vector<CgroupInfo> ranked() const;
    // The containers of a pod, read now, heaviest first, named.
    std::vector<CgroupInfo> containers(const CgroupInfo& pod);
    // Names one container of a pod by the ContainerNamer rule, with the pod's
    // container cgroups (read now) as its siblings. Its own cgroup may be gone
    // (a kernel OOM victim's often is).
    ContainerSlot name_container(const CgroupInfo& pod, std::string_view container_id);
    // Fills pod_namespace/pod_name (and notes) from the pod log directory.
    void resolve_names(CgroupInfo& c);

    Allocatable allocatable();
    const std::vector<Unclassified>& unclassified() const { return tree_.unclassified(); }
    PodNameResolver& names() { return names_; }
    ContainerNamer& namer() { return namer_; }
    // The memory hierarchy root, for openat() by the kill action.
    int root_fd() const { return tree_.root_fd(); }

private:
    const Clock* clock_;
    Settings settings_;
    std::optional<Error> error_;
    CgroupTree tree_;
    PodNameResolver names_;
    RuntimeStateReader runtime_;
    ContainerNamer namer_{names_, runtime_};

    std::vector<RankNode> rank_;   // readings, parallel to tree_.nodes()
    std::vector<uint32_t> order_;  // ranking: indices into both
    bool dirty_ = true;
    bool structured_ = false;
    Duration structured_at_{0};
    size_t cursor_ = 0;
    size_t stat_cursor_ = 0;
    uint64_t reports_ = 0;
    std::vector<uint32_t> by_usage_;  // scratch
    RefreshStats last_;
    char stat_buf_[8192];

    void reset();
    void restructure();
    CgroupInfo info_of(uint32_t i) const;
    void add_details(CgroupInfo& c, int dirfd);
    // A pod's container cgroups, read and classified, not named.
    std::vector<CgroupInfo> list_containers(const CgroupInfo& pod);
    void name_containers(const CgroupInfo& pod, std::vector<CgroupInfo>& cs);
};

}  // namespace oomguard
