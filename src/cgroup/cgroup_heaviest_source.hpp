// The cgroup ranking as the D-Bus API and the metrics see it: HeaviestRow lists
// (pods heaviest first, the heaviest pod followed by its containers).
#pragma once

#include "cgroup/cgroup_targeting.hpp"
#include "core/heaviest_source.hpp"

namespace oomguard {

class CgroupHeaviestSource final : public HeaviestSource {
public:
    explicit CgroupHeaviestSource(CgroupTargeting& targeting) : targeting_(targeting) {}
    // Serves the current ranking (kept warm by the background refresh); reads
    // only the limits and names of the rows it returns.
    std::vector<HeaviestRow> heaviest(size_t max) override;
    // The last report (trigger, start/reload or background refresh), as rows:
    // no file reads. What the D-Bus API serves.
    std::vector<HeaviestRow> last_ranking(size_t max) override;
    uint64_t generation() const override { return targeting_.last_report().serial; }

private:
    CgroupTargeting& targeting_;
};

}  // namespace oomguard
