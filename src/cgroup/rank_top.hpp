// The working-set ranking over plain structs, without files: which cgroups
// need an exact working set (memory.stat) this refresh, and the final order.
//
// Why: usage is cheap to read (~1 us), memory.stat is not (~10 us on v1), and
// working set <= usage. So, in order of usage, exact working sets are read only
// until the next usage is no larger than the k-th best working set found:
// nothing further down can enter the top k. The rest keep their last
// inactive_file reading (an estimate). Cost: one sort of n indices, O(k) per
// read; no allocation (scratch is the caller's).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "cgroup/memcg_stats.hpp"
#include "core/clock.hpp"
#include "util/units.hpp"

namespace oomguard {

struct RankNode {
    MemcgUsage usage;
    bool has_data = false;  // usage read at least once
    bool exact = false;     // inactive_file read by this refresh
    bool gone = false;      // vanished: ranked last, dropped at the next restructure
    uint64_t working_set() const { return usage.working_set(); }
    bool valid() const { return has_data && !gone; }
};

struct RankTopStats {
    size_t stat_read = 0;  // exact working sets read
    bool deadline_hit = false;
};

// Reads exact working sets with read(i) (which sets nodes[i].usage.inactive_file
// and exact, or gone) until the top k are exact. The deadline (on `clock`) is
// honoured only after k reads, so a refresh always makes the top progress.
// Clears every node's `exact` first. by_usage: scratch.
template <typename ReadInactive>
RankTopStats rank_top(std::vector<RankNode>& nodes, size_t k, Duration deadline, const Clock& clock,
                      ReadInactive&& read, std::vector<uint32_t>& by_usage) {
    RankTopStats st;
    by_usage.clear();
    for (uint32_t i = 0; i < nodes.size(); ++i) {
        nodes[i].exact = false;
        if (nodes[i].valid()) by_usage.push_back(i);
    }
    std::sort(by_usage.begin(), by_usage.end(),
              [&](uint32_t a, uint32_t b) { return nodes[a].usage.usage > nodes[b].usage.usage; });
    if (k == 0) return st;
    // The best k working sets so far, descending, kept in the first k of a
    // small fixed array when k is small (the monitor's kExactTop).
    constexpr size_t kInline = 16;
    uint64_t inline_top[kInline];
    std::vector<uint64_t> heap_top;
    uint64_t* top = inline_top;
    if (k > kInline) {
        heap_top.resize(k);
        top = heap_top.data();
    }
    size_t ntop = 0;
    for (uint32_t idx : by_usage) {
        RankNode& x = nodes[idx];
        // Equal usage cannot beat the bar either: an estimate sorts after an equal exact value.
        if (ntop == k && x.usage.usage <= top[k - 1]) break;
        if (st.stat_read >= k && clock.now() >= deadline) {
            st.deadline_hit = true;
            break;
        }
        read(idx);
        if (!x.exact) continue;
        ++st.stat_read;
        const uint64_t ws = x.working_set();
        size_t pos;
        if (ntop < k)
            pos = ntop++;
        else if (ws > top[k - 1])
            pos = k - 1;
        else
            continue;
        top[pos] = ws;
        while (pos > 0 && top[pos - 1] < top[pos]) {
            std::swap(top[pos - 1], top[pos]);
            --pos;
        }
    }
    return st;
}

// The ranking: valid nodes first, heaviest working set first, an exact value
// before an equal estimate, then by index (stable across refreshes).
void rank_order(const std::vector<RankNode>& nodes, std::vector<uint32_t>& order);

}  // namespace oomguard
