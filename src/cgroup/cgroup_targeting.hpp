// Wires the cgroup code into the daemon:
//  - TriggerHook::act(): the kill-cgroup action, its choice bounded by
//    [kubernetes] scan_budget (ranking and pod log listings); a successful
//    cgroup.kill write or SIGKILL is the action, the emptying is watched from
//    the loop and logged with the memory that came back;
//  - TriggerHook::describe(): after each trigger (never before the sysrq
//    write), the heaviest pod and container from the ranking held by the
//    background refresh (journal fields plus a top-5 table);
//  - EventSink::on_config(): at start and on reload, the hierarchy, the node
//    allocatable check and the current heaviest cgroups (Event::Heaviest);
//  - LoopSource: a background refresh (every 10s with a sweep of all
//    memory.stat files within scan_budget; every 1s without the sweep below the
//    warning level) so the structure, ranking and names are warm for a trigger.
//
// How long a trigger waits for the naming: refresh() stops at scan_budget
// (after a minimum of 8+8 usage and 8 memory.stat reads); report() then reads
// the limits of the top 5, lists the heaviest pod's containers and reads them,
// and resolves names (the log directories are listed at most once a second and
// are warm from the background). The total is logged as OOMGUARD_DESCRIBE_USEC.
#pragma once

#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "cgroup/cgroup_killer.hpp"
#include "cgroup/cgroup_monitor.hpp"
#include "daemon.hpp"

namespace oomguard {

class CgroupTargeting final : public TriggerHook, public EventSink, public LoopSource {
public:
    explicit CgroupTargeting(Daemon& daemon) : daemon_(daemon) {}
    // Registers itself with the daemon as hook, sink and source.
    void install();

    CgroupMonitor& monitor() { return monitor_; }
    // The latest report: from the last trigger, start/reload, or background
    // refresh (at most 10s old, 1s below the warning level).
    const HeaviestReport& last_report() const { return last_report_; }
    // The container the current trigger killed (or would kill, dry-run): the
    // target its entry and the bus name. Empty when the trigger was sysrq.
    const std::optional<VictimChoice>& trigger_victim() const { return trigger_victim_; }

    static CgroupMonitor::Settings settings_from(const Config& c);

    void describe(std::string& message, std::vector<LogField>& fields) override;
    ActionResult act(const Config& config, bool dry_run) override;

    void on_config(const DaemonState& state, const Config& config) override;
    void on_state(const DaemonState& state) override;

    Spec poll_spec() override;
    void dispatch(short revents) override;

    static constexpr Duration kCalmInterval = std::chrono::seconds(10);
    static constexpr Duration kAlertInterval = std::chrono::seconds(1);
    static constexpr size_t kTopN = 5;
    // Background pod log listings run in slices of this, one per loop iteration.
    static constexpr Duration kListSlice = std::chrono::milliseconds(2);
    // After a kill: how often and how long to watch the cgroup empty.
    static constexpr Duration kWatchInterval = std::chrono::milliseconds(20);
    static constexpr Duration kWatchLimit = std::chrono::seconds(30);

    ~CgroupTargeting() override {
        if (watch_.fd >= 0) ::close(watch_.fd);
    }

private:
    Daemon& daemon_;
    CgroupMonitor monitor_;
    Config::Kubernetes k8s_;
    bool configured_once_ = false;
    bool alert_ = false;
    Duration next_refresh_{0};
    Duration last_refresh_at_{0};
    HeaviestReport last_report_;
    Duration last_report_at_{0};
    struct KillWatch {
        int fd = -1;  // the killed cgroup's directory
        std::string label;
        bool v1 = false;  // signals, not cgroup.kill: re-signal late forks
        uint64_t working_set = 0;
        uint64_t avail_at_kill = 0;
        Duration killed_at{0}, next_check{0};
    } watch_;
    std::string unclassified_seen_;
    // Set by act(), taken by describe() of the same trigger.
    std::optional<VictimChoice> pending_victim_, trigger_victim_;
    // Containers killed in this episode (episodes_total when killed).
    std::vector<std::string> killed_;
    uint64_t killed_episode_ = 0;
    std::vector<std::string> still_dying();
    // Reloads repeat the allocatable finding and the heaviest table only when
    // they changed, or once a minute (a SIGHUP storm must not flood journald).
    struct Repeat {
        std::string seen;
        Duration at{0};
        bool due(const std::string& what, Duration now, bool first);
    } alloc_log_, heaviest_log_;
    bool reload_ = false;  // on_config() after the first one
    static constexpr Duration kRepeatEvery = std::chrono::minutes(1);

    void refresh(Duration budget, bool sweep);
    void log_unclassified_if_new();
    void check_allocatable(uint64_t mem_total);
    void check_kill_mode(const Config& config);
    void names_deadline(Duration budget);
    void watch_kill(const CgroupInfo& c, const KillOutcome& o);
    void check_kill();
};

}  // namespace oomguard
