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

}  // namespace oomguard
