// The cgroup code as the daemon sees it: one TriggerHook, EventSink and
// LoopSource that owns the monitor and delegates to the focused pieces:
//  - RankingCache (ranking_cache.hpp): the ranking held between triggers;
//  - KillCgroupAction (kill_action.hpp): TriggerHook::act() in kill-cgroup mode;
//  - KillWatch (kill_watch.hpp): the killed cgroup emptying, watched from the loop;
//  - NodeChecks (node_checks.hpp): what on_config() logs about the node.
// Itself it does two things:
//  - TriggerHook::describe(): after each trigger (never before the sysrq
//    write), the heaviest pod and container from usages read after the
//    trigger (journal fields plus a top-5 table), and the kill-cgroup victim;
//  - LoopSource: a background refresh (every 10s with a sweep of all
//    memory.stat files within scan_budget; every 1s without the sweep below the
//    warning level) so that the structure, ranking and names are warm for a
//    trigger. The daemon calls on_config() at start before its first sample.
//
// How long the naming takes, after the action: refresh() (skipped when the
// kill action read the usages for this trigger) stops at scan_budget
// (after a minimum of 8+8 usage and 8 memory.stat reads); report() then reads
// the limits of the top 5, lists the heaviest pod's containers and reads them,
// and resolves names (the log directories are listed at most once a second and
// are warm from the background). The total is logged as OOMGUARD_DESCRIBE_USEC.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cgroup/cgroup_monitor.hpp"
#include "cgroup/kill_action.hpp"
#include "cgroup/kill_watch.hpp"
#include "cgroup/node_checks.hpp"
#include "cgroup/ranking_cache.hpp"
#include "config/config.hpp"
#include "core/clock.hpp"
#include "core/event_sink.hpp"
#include "core/host.hpp"
#include "core/loop_source.hpp"
#include "core/trigger_hook.hpp"

namespace oomguard {

class CgroupTargeting final : public TriggerHook, public EventSink, public LoopSource {
public:
    explicit CgroupTargeting(Host& host, const Clock& clock = monotonic_clock());

    CgroupMonitor& monitor() { return monitor_; }
    // The latest report: from the last trigger, start/reload, or background
    // refresh (at most 10s old, 1s below the warning level).
    const HeaviestReport& last_report() const { return ranking_.last(); }
    // The container the current trigger killed (or would kill, dry-run): the
    // target its entry and the bus name. Empty when the trigger was sysrq.
    const std::optional<VictimChoice>& trigger_victim() const { return trigger_victim_; }

    static CgroupMonitor::Settings settings_from(const Config& c);

    void describe(std::string& message, std::vector<LogField>& fields) override;
    ActionResult act(const Config& config, bool dry_run) override;
    std::optional<HeaviestRow> target() override;

    void on_config(const DaemonState& state, const Config& config) override;
    void on_state(const DaemonState& state) override;

    Spec poll_spec() override;
    void dispatch(short revents) override;

    static constexpr Duration kCalmInterval = std::chrono::seconds(10);
    static constexpr Duration kAlertInterval = std::chrono::seconds(1);
    // A report this much older than the trigger still lends its peaks.
    static constexpr Duration kPeakWindow = 2 * kAlertInterval;
    static constexpr size_t kTopN = RankingCache::kTopN;
    // Background pod log listings run in slices of this, one per loop iteration.
    static constexpr Duration kListSlice = std::chrono::milliseconds(2);

private:
    Host& host_;
    const Clock& clock_;
    CgroupMonitor monitor_{clock_};
    RankingCache ranking_{monitor_, clock_};
    KillWatch watch_;
    KillCgroupAction kill_{host_, monitor_, ranking_, watch_, clock_};
    NodeChecks checks_;
    Config::Kubernetes k8s_;
    bool configured_once_ = false;
    bool alert_ = false;
    Duration next_refresh_{0};
    // Set by describe() of the current trigger, from the kill action.
    std::optional<VictimChoice> trigger_victim_;
    // The kill action of the current trigger began then (its readings may serve
    // describe()); cleared by describe().
    bool acted_ = false;
    Duration acted_at_{0};

    void refresh(Duration budget, bool sweep);
};

}  // namespace oomguard
