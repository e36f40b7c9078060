#include "cgroup/report_peaks.hpp"

#include <algorithm>

namespace oomguard {

namespace {

constexpr const char* kBefore = "working set read before the trigger";

// Takes `old`'s figures when it was heavier; keeps `now`'s names and details.
bool keep_peak(const CgroupInfo& old, CgroupInfo& now) {
    if (old.working_set <= now.working_set) return false;
    now.usage = old.usage;
    now.inactive_file = old.inactive_file;
    now.working_set = old.working_set;
    now.estimate = old.estimate;
    now.note = now.note.empty() ? kBefore : now.note + "; " + kBefore;
    return true;
}

void sort_heaviest(std::vector<CgroupInfo>& v) {
    std::stable_sort(v.begin(), v.end(), [](const CgroupInfo& a, const CgroupInfo& b) {
        return a.working_set > b.working_set;
    });
}

const CgroupInfo* find_path(const std::vector<CgroupInfo>& v, const std::string& path) {
    for (const auto& c : v)
        if (c.path == path) return &c;
    return nullptr;
}

}  // namespace

size_t merge_container_peaks(const std::vector<CgroupInfo>& before_containers,
                             std::vector<CgroupInfo>& containers) {
    size_t n = 0;
    for (auto& c : containers)
        if (const CgroupInfo* old = find_path(before_containers, c.path)) n += keep_peak(*old, c);
    for (const auto& old : before_containers)
        if (!find_path(containers, old.path)) {  // its cgroup went with the kill
            containers.push_back(old);
            CgroupInfo& c = containers.back();
            c.note = c.note.empty() ? kBefore : c.note + "; " + kBefore;
            ++n;
        }
    if (n) sort_heaviest(containers);
    return n;
}

PeakMerge merge_peaks(const HeaviestReport& before, HeaviestReport& after, size_t top_n) {
    PeakMerge m;
    if (!before.valid || !after.valid || before.kubernetes != after.kubernetes) return m;
    const std::string top_was = after.top.empty() ? "" : after.top[0].path;
    for (auto& p : after.top)
        if (const CgroupInfo* old = find_path(before.top, p.path)) m.pods += keep_peak(*old, p);
    for (const auto& old : before.top)
        if (!find_path(after.top, old.path)) {
            after.top.push_back(old);
            CgroupInfo& p = after.top.back();
            p.note = p.note.empty() ? kBefore : p.note + "; " + kBefore;
            ++m.pods;
        }
    if (m.pods) sort_heaviest(after.top);
    if (after.top.size() > top_n) after.top.resize(top_n);
    m.top_changed = !after.top.empty() && after.top[0].path != top_was;
    if (!m.top_changed && !after.top.empty() && !before.top.empty() &&
        before.top[0].path == after.top[0].path)
        m.containers = merge_container_peaks(before.containers, after.containers);
    return m;
}

}  // namespace oomguard
