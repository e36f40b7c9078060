#include "cgroup/rank_top.hpp"

namespace oomguard {

void rank_order(const std::vector<RankNode>& nodes, std::vector<uint32_t>& order) {
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
        const RankNode& x = nodes[a];
        const RankNode& y = nodes[b];
        const bool xv = x.valid(), yv = y.valid();
        if (xv != yv) return xv;
        const uint64_t wx = x.working_set(), wy = y.working_set();
        if (wx != wy) return wx > wy;
        if (x.exact != y.exact) return x.exact;  // an estimate never outranks an equal exact value
        return a < b;
    });
}

}  // namespace oomguard
