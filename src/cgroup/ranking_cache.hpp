// The ranking the cgroup code holds between triggers: refreshed by the
// background (CgroupTargeting's LoopSource), read by the trigger naming, the
// kill choice, D-Bus and the metrics, so that a trigger names from a warm
// ranking instead of scanning.
#pragma once

#include "cgroup/cgroup_monitor.hpp"
#include "cgroup/report_peaks.hpp"
#include "core/clock.hpp"

namespace oomguard {

class RankingCache {
public:
    static constexpr size_t kTopN = 5;

    RankingCache(CgroupMonitor& monitor, const Clock& clock) : monitor_(monitor), clock_(clock) {}

    // Re-reads the monitor's ranking within `budget`; true when the structure
    // changed (new or vanished cgroups).
    bool refresh(Duration budget, bool sweep);
    // A new report of the top kTopN (limits, the heaviest pod's containers, names
    // resolved within `names_budget`: listings cut short resume in the background).
    void report(Duration names_budget);
    // The report of a trigger written at `trigger_at`: a new report, with the
    // peaks of the last one merged in when that was made at most `window`
    // before the trigger (see report_peaks.hpp). Returns what was merged.
    PeakMerge report_after_trigger(Duration names_budget, Duration trigger_at, Duration window);

    // The latest report: from the last trigger, start/reload, or background
    // refresh (at most 10s old, 1s below the warning level).
    const HeaviestReport& last() const { return last_; }
    Duration refreshed_at() const { return refreshed_at_; }
    // When the last refresh began reading usages: nothing it read is older.
    Duration read_at() const { return read_at_; }
    Duration reported_at() const { return reported_at_; }
    // read_at() of the refresh the latest report ranks by: the age of its pod
    // figures (its containers are read by the report itself, later). A report
    // made later from the same readings is no fresher than they are.
    Duration data_at() const { return data_at_; }

private:
    CgroupMonitor& monitor_;
    const Clock& clock_;
    HeaviestReport last_;
    Duration refreshed_at_{0};
    Duration read_at_{0};
    Duration reported_at_{0};
    Duration data_at_{0};
};

}  // namespace oomguard
