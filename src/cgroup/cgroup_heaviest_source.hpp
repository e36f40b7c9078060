// The cgroup ranking as the D-Bus API and the metrics see it: HeaviestRow lists
// (pods heaviest first, the heaviest pod followed by its containers).
#pragma once

#include "bus/heaviest_source.hpp"
#include "cgroup/cgroup_targeting.hpp"

namespace oomguard {

class CgroupHeaviestSource final : public HeaviestSource {
public:
    explicit CgroupHeaviestSource(CgroupTargeting& targeting) : targeting_(targeting) {}
    // Serves the current ranking (kept warm by the background refresh); reads
    // only the limits and names of the rows it returns.
    std::vector<HeaviestRow> heaviest(size_t max) override;
    std::optional<HeaviestRow> last_trigger_target() override;

    static HeaviestRow row(const CgroupInfo& c, bool container);

private:
    CgroupTargeting& targeting_;
};

}  // namespace oomguard
