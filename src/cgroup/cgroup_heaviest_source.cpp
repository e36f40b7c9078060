#include "cgroup/cgroup_heaviest_source.hpp"

namespace oomguard {

HeaviestRow CgroupHeaviestSource::row(const CgroupInfo& c, bool container) {
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

std::vector<HeaviestRow> CgroupHeaviestSource::rows(const HeaviestReport& rep, size_t max) {
    std::vector<HeaviestRow> rows;
    if (!rep.valid) return rows;
    for (size_t i = 0; i < rep.top.size() && rows.size() < max; ++i) {
        rows.push_back(row(rep.top[i], false));
        if (i == 0)
            for (const auto& c : rep.containers) {
                if (rows.size() >= max) break;
                // The pause sandbox and CRI-O's conmon hold the pod, they are no
                // containers of its spec: `oomguardctl top` would list them by id.
                if (c.kind == CgroupKind::Sandbox || c.kind == CgroupKind::Conmon) continue;
                rows.push_back(row(c, true));
            }
    }
    return rows;
}

std::vector<HeaviestRow> CgroupHeaviestSource::heaviest(size_t max) {
    CgroupMonitor& m = targeting_.monitor();
    if (max == 0 || !m.configured()) return {};
    return rows(m.report(max), max);
}

std::vector<HeaviestRow> CgroupHeaviestSource::last_ranking(size_t max) {
    return rows(targeting_.last_report(), max);
}

std::optional<HeaviestRow> CgroupHeaviestSource::trigger_target(const CgroupTargeting& targeting) {
    // kill-cgroup: the container killed, not the heaviest (victims go by QoS).
    if (const auto& v = targeting.trigger_victim()) {
        HeaviestRow r = row(v->container, true);
        HeaviestRow pod = row(v->pod, false);
        if (r.namespace_.empty()) r.namespace_ = pod.namespace_;
        if (r.pod.empty()) r.pod = pod.pod;
        if (r.qos.empty()) r.qos = pod.qos;
        return r;
    }
    const HeaviestReport& rep = targeting.last_report();
    if (!rep.valid || rep.top.empty()) return std::nullopt;
    if (!rep.containers.empty()) {
        HeaviestRow r = row(rep.containers.front(), true);
        // Containers may lack the pod's names; take them from the pod row.
        HeaviestRow pod = row(rep.top.front(), false);
        if (r.namespace_.empty()) r.namespace_ = pod.namespace_;
        if (r.pod.empty()) r.pod = pod.pod;
        return r;
    }
    return row(rep.top.front(), false);
}

}  // namespace oomguard
