#include "cgroup/report_peaks.hpp"

#include <algorithm>

namespace oomguard {

namespace {

constexpr const char* kBefore = "working set read before the trigger";

void mark_before(CgroupInfo& c) { c.note = c.note.empty() ? kBefore : c.note + "; " + kBefore; }

// Takes `old`'s figures when it was heavier; keeps `now`'s names and details.
bool keep_peak(const CgroupInfo& old, CgroupInfo& now) {
    if (old.working_set <= now.working_set) return false;
    now.usage = old.usage;
    now.inactive_file = old.inactive_file;
    now.working_set = old.working_set;
    now.estimate = old.estimate;
    mark_before(now);
    return true;
}

const CgroupInfo* find_path(const std::vector<CgroupInfo>& v, const std::string& path) {
    for (const auto& c : v)
        if (c.path == path) return &c;
    return nullptr;
}

// One list (pods, or one pod's containers): peaks kept, entries the kill took
// away brought back, re-sorted heaviest first. How many came from `before`.
size_t merge_list(const std::vector<CgroupInfo>& before, std::vector<CgroupInfo>& after) {
    size_t n = 0;
    for (auto& c : after)
        if (const CgroupInfo* old = find_path(before, c.path)) n += keep_peak(*old, c);
    for (const auto& old : before)
        if (!find_path(after, old.path)) {
            after.push_back(old);
            mark_before(after.back());
            ++n;
        }
    if (n)
        std::stable_sort(after.begin(), after.end(), [](const CgroupInfo& a, const CgroupInfo& b) {
            return a.working_set > b.working_set;
        });
    return n;
}

}  // namespace

size_t merge_container_peaks(const std::vector<CgroupInfo>& before_containers,
                             std::vector<CgroupInfo>& containers) {
    return merge_list(before_containers, containers);
}

PeakMerge merge_peaks(const HeaviestReport& before, HeaviestReport& after, size_t top_n) {
    PeakMerge m;
    if (!before.valid || !after.valid || before.kubernetes != after.kubernetes) return m;
    const std::string top_was = after.top.empty() ? "" : after.top[0].path;
    m.pods = merge_list(before.top, after.top);
    if (after.top.size() > top_n) after.top.resize(top_n);
    m.top_changed = !after.top.empty() && after.top[0].path != top_was;
    if (!m.top_changed && !after.top.empty() && !before.top.empty() &&
        before.top[0].path == after.top[0].path)
        m.containers = merge_list(before.containers, after.containers);
    return m;
}

}  // namespace oomguard
