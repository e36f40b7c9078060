#include "cgroup/heaviest_rows.hpp"

namespace oomguard {

HeaviestRow heaviest_row(const CgroupInfo& c, bool container) {
    HeaviestRow r;
    r.cgroup = c.path;
    r.namespace_ = c.pod_namespace;
    r.pod = c.pod_name.empty() ? c.pod_uid : c.pod_name;
    // Data, not a label (container_label): the full id when the name is
    // unknown, as D-Bus and the metrics publish the heaviest rows.
    if (container) r.container = c.container_name.empty() ? c.container_id : c.container_name;
    r.qos = c.qos == QosClass::Unknown ? "" : to_string(c.qos);
    r.working_set = c.working_set;
    r.limit = c.limit.value_or(0);
    return r;
}

std::vector<HeaviestRow> heaviest_rows(const HeaviestReport& rep, size_t max) {
    std::vector<HeaviestRow> rows;
    if (!rep.valid) return rows;
    for (size_t i = 0; i < rep.top.size() && rows.size() < max; ++i) {
        rows.push_back(heaviest_row(rep.top[i], false));
        if (i == 0)
            for (const auto& c : rep.containers) {
                if (rows.size() >= max) break;
                // The pause sandbox and CRI-O's conmon hold the pod, they are no
                // containers of its spec: `oomguardctl top` would list them by id.
                if (c.kind == CgroupKind::Sandbox || c.kind == CgroupKind::Conmon) continue;
                rows.push_back(heaviest_row(c, true));
            }
    }
    return rows;
}

std::optional<HeaviestRow> trigger_target_row(const HeaviestReport& rep,
                                              const std::optional<VictimChoice>& victim) {
    // kill-cgroup: the container killed, not the heaviest (victims go by QoS).
    if (const auto& v = victim) {
        HeaviestRow r = heaviest_row(v->container, true);
        HeaviestRow pod = heaviest_row(v->pod, false);
        if (r.namespace_.empty()) r.namespace_ = pod.namespace_;
        if (r.pod.empty()) r.pod = pod.pod;
        if (r.qos.empty()) r.qos = pod.qos;
        return r;
    }
    if (!rep.valid || rep.top.empty()) return std::nullopt;
    if (!rep.containers.empty()) {
        HeaviestRow r = heaviest_row(rep.containers.front(), true);
        // Containers may lack the pod's names; take them from the pod row.
        HeaviestRow pod = heaviest_row(rep.top.front(), false);
        if (r.namespace_.empty()) r.namespace_ = pod.namespace_;
        if (r.pod.empty()) r.pod = pod.pod;
        return r;
    }
    return heaviest_row(rep.top.front(), false);
}

}  // namespace oomguard
