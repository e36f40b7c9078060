#include "cgroup/ranking_cache.hpp"

namespace oomguard {

bool RankingCache::refresh(Duration budget, bool sweep) {
    read_at_ = clock_.now();
    const bool restructured = monitor_.refresh(budget, sweep).restructured;
    refreshed_at_ = clock_.now();
    return restructured;
}

void RankingCache::report(Duration names_budget) {
    monitor_.names().set_deadline(clock_.now() + names_budget);
    last_ = monitor_.report(kTopN);
    data_at_ = read_at_;
    monitor_.names().set_deadline(Duration::max());
    reported_at_ = clock_.now();
}

PeakMerge RankingCache::report_after_trigger(Duration names_budget, Duration trigger_at,
                                             Duration window) {
    const bool usable =
        last_.serial != 0 && reported_at_ <= trigger_at && trigger_at - reported_at_ <= window;
    HeaviestReport before = usable ? last_ : HeaviestReport{};
    report(names_budget);
    if (!usable) return {};
    PeakMerge m = merge_peaks(before, last_, kTopN);
    if (m.top_changed && last_.kubernetes) {
        last_.containers = monitor_.containers(last_.top[0]);
        if (!before.top.empty() && before.top[0].path == last_.top[0].path)
            m.containers = merge_container_peaks(before.containers, last_.containers);
    }
    return m;
}

}  // namespace oomguard
