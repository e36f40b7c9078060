// A report as the rows D-Bus and the metrics publish (core/heaviest_source.hpp):
// pure functions over the cgroup code's values, shared by the heaviest source
// (GetHeaviest, Dump, metrics) and the trigger hook (the trigger's target).
#pragma once

#include <optional>
#include <vector>

#include "cgroup/cgroup_killer.hpp"
#include "cgroup/cgroup_monitor.hpp"
#include "core/heaviest_source.hpp"

namespace oomguard {

HeaviestRow heaviest_row(const CgroupInfo& c, bool container);
// Pods heaviest first, the heaviest pod followed by its containers.
std::vector<HeaviestRow> heaviest_rows(const HeaviestReport& rep, size_t max);
// What a trigger named: the container kill-cgroup chose (`victim`), else the
// heaviest pod's heaviest container, else the pod; nullopt without a ranking.
std::optional<HeaviestRow> trigger_target_row(const HeaviestReport& rep,
                                              const std::optional<VictimChoice>& victim);

}  // namespace oomguard
