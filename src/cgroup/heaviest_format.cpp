#include "cgroup/heaviest_format.hpp"

#include <cstdio>

#include "core/oom_kill.hpp"

namespace oomguard {
namespace {

std::string pad_left(const std::string& s, size_t w) {
    return s.size() >= w ? s : std::string(w - s.size(), ' ') + s;
}
std::string pad_right(const std::string& s, size_t w) {
    return s.size() >= w ? s : s + std::string(w - s.size(), ' ');
}

std::string label_of(const CgroupInfo& c) {
    return container_label(c.container_name, c.container_id, c.path);
}

// The heaviest real container of the report, or nullptr.
const CgroupInfo* heaviest_container(const HeaviestReport& r) {
    for (const auto& c : r.containers)
        if (c.kind == CgroupKind::Container) return &c;
    return r.containers.empty() ? nullptr : &r.containers.front();
}

}  // namespace

std::string format_limit(const CgroupInfo& c) {
    if (!c.limit_known) return "?";
    return c.limit ? format_bytes(*c.limit) : "unlimited";
}

std::string heaviest_summary(const HeaviestReport& r) {
    if (!r.valid)
        return "heaviest cgroup unknown: " +
               (r.error ? r.error->message : std::string("no report"));
    if (r.top.empty()) return r.kubernetes ? "no pods under " + r.kubepods : "no cgroups to rank";
    const CgroupInfo& p = r.top.front();
    std::string s;
    if (r.kubernetes) {
        // "heaviest pod shop/web-1 2.1 GiB (BestEffort), container web 2.0 GiB (working set; ...)"
        s = "heaviest pod " + p.display_name() + " " + format_bytes(p.working_set) + " (" +
            to_string(p.qos) + ")";
        if (const CgroupInfo* c = heaviest_container(r))
            s += ", container " + label_of(*c) + " " + format_bytes(c->working_set);
    } else {
        s = "heaviest cgroup " + p.path + " " + format_bytes(p.working_set);
    }
    s += " (working set; usage " + format_bytes(p.usage) + ", limit " + format_limit(p) + ")";
    return s;
}

std::string heaviest_table(const HeaviestReport& r, size_t n) {
    if (!r.valid || r.top.empty()) return "";
    std::string t = r.kubernetes ? "   #  WORKING SET        USAGE        LIMIT  QOS         POD\n"
                                 : "   #  WORKING SET        USAGE        LIMIT  CGROUP\n";
    for (size_t i = 0; i < r.top.size() && i < n; ++i) {
        const CgroupInfo& c = r.top[i];
        char idx[24];
        std::snprintf(idx, sizeof idx, "%4zu", i + 1);
        t += std::string(idx) + "  " + pad_left(format_bytes(c.working_set), 11) + "  " +
             pad_left(format_bytes(c.usage), 11) + "  " + pad_left(format_limit(c), 11) + "  ";
        if (r.kubernetes) {
            t += pad_right(to_string(c.qos), 10) + "  " + c.display_name();
            if (i == 0)
                if (const CgroupInfo* k = heaviest_container(r)) t += " [" + label_of(*k) + "]";
        } else {
            t += c.path;
        }
        t += "\n";
    }
    if (r.ranked > n) t += "      (" + std::to_string(r.ranked - n) + " more)\n";
    if (!t.empty() && t.back() == '\n') t.pop_back();
    return t;
}

void append_heaviest_fields(const HeaviestReport& r, std::vector<LogField>& f) {
    if (!r.valid || r.top.empty()) return;
    const CgroupInfo& p = r.top.front();
    f.push_back({"OOMGUARD_CGROUP", p.path});
    f.push_back({"OOMGUARD_WORKING_SET_BYTES", std::to_string(p.working_set)});
    f.push_back({"OOMGUARD_USAGE_BYTES", std::to_string(p.usage)});
    f.push_back({"OOMGUARD_LIMIT",
                 p.limit_known ? (p.limit ? std::to_string(*p.limit) : "max") : "unknown"});
    f.push_back({"OOMGUARD_SCAN_USEC",
                 std::to_string(
                     std::chrono::duration_cast<std::chrono::microseconds>(r.scan_time).count())});
    if (!r.kubernetes) return;
    f.push_back({"OOMGUARD_POD_UID", p.pod_uid});
    f.push_back({"OOMGUARD_POD_NAMESPACE", p.pod_namespace});
    f.push_back({"OOMGUARD_POD_NAME", p.pod_name});
    f.push_back({"OOMGUARD_QOS", to_string(p.qos)});
    if (const CgroupInfo* c = heaviest_container(r)) {
        f.push_back({"OOMGUARD_CONTAINER_NAME", c->container_name});
        f.push_back({"OOMGUARD_CONTAINER_ID", c->container_id});
        f.push_back({"OOMGUARD_CONTAINER_CGROUP", c->path});
        f.push_back({"OOMGUARD_CONTAINER_WORKING_SET_BYTES", std::to_string(c->working_set)});
        if (c->oom_group >= 0) f.push_back({"OOMGUARD_OOM_GROUP", std::to_string(c->oom_group)});
    }
}

}  // namespace oomguard
