#include "cgroup/cgroup_heaviest_source.hpp"

#include "cgroup/heaviest_rows.hpp"

namespace oomguard {

std::vector<HeaviestRow> CgroupHeaviestSource::heaviest(size_t max) {
    CgroupMonitor& m = targeting_.monitor();
    if (max == 0 || !m.configured()) return {};
    return heaviest_rows(m.report(max), max);
}

std::vector<HeaviestRow> CgroupHeaviestSource::last_ranking(size_t max) {
    return heaviest_rows(targeting_.last_report(), max);
}

}  // namespace oomguard
