// rank_top and rank_order over plain structs, on the stack: no files, time on
// a ManualClock (or one that ticks per reading), so budgets are exact.
#include "cgroup/rank_top.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "tick_clock.hpp"

using namespace oomguard;
using oomguard::test::TickClock;

namespace {

constexpr uint64_t MiB = 1ull << 20;

RankNode node(uint64_t usage_mib, uint64_t stale_inactive_mib = 0) {
    RankNode n;
    n.usage.usage = usage_mib * MiB;
    n.usage.inactive_file = stale_inactive_mib * MiB;
    n.has_data = true;
    return n;
}

// inactive[i]: what memory.stat would say now.
struct Reader {
    std::vector<RankNode>& nodes;
    std::vector<uint64_t> inactive_mib;
    std::vector<uint32_t> reads;
    void operator()(uint32_t i) {
        reads.push_back(i);
        nodes[i].usage.inactive_file = inactive_mib[i] * MiB;
        nodes[i].exact = true;
    }
};

std::vector<uint32_t> ordered(const std::vector<RankNode>& nodes) {
    std::vector<uint32_t> order;
    for (uint32_t i = 0; i < nodes.size(); ++i) order.push_back(i);
    rank_order(nodes, order);
    return order;
}

}  // namespace

// Reads stop once the next usage cannot beat the k-th exact working set.
TEST(RankTop, ReadsOnlyWhatCanEnterTheTop) {
    std::vector<RankNode> nodes = {node(100), node(90), node(80), node(70), node(10), node(5)};
    Reader rd{nodes, {90, 0, 0, 0, 0, 0}, {}};  // node 0 is page cache
    ManualClock clock;
    std::vector<uint32_t> scratch;
    RankTopStats st = rank_top(nodes, 2, Duration::max(), clock, rd, scratch);
    EXPECT_FALSE(st.deadline_hit);
    // 100 (ws 10), 90 (ws 90), 80 (ws 80): the bar is now 80, and 70 <= 80 stops it.
    EXPECT_EQ(rd.reads, (std::vector<uint32_t>{0, 1, 2}));
    EXPECT_EQ(st.stat_read, 3u);
    // Node 0 (exact ws 10) and node 4 (estimate ws 10) tie: the exact one first.
    EXPECT_EQ(ordered(nodes), (std::vector<uint32_t>{1, 2, 3, 0, 4, 5}));
}

// Equal working sets: an exact value outranks an equal estimate, and equal
// exact values keep index order; equal usage at the bar is not read.
TEST(RankTop, TiesExactBeforeEstimateThenIndex) {
    std::vector<RankNode> nodes = {node(50), node(50), node(50), node(50)};
    Reader rd{nodes, {0, 0, 0, 0}, {}};
    ManualClock clock;
    std::vector<uint32_t> scratch;
    RankTopStats st = rank_top(nodes, 2, Duration::max(), clock, rd, scratch);
    EXPECT_EQ(st.stat_read, 2u) << "usage equal to the bar cannot beat it";
    EXPECT_TRUE(nodes[0].exact && nodes[1].exact);
    EXPECT_FALSE(nodes[2].exact || nodes[3].exact);
    // Estimates (2, 3) have the same working set: the exact ones go first.
    nodes[3].exact = false;
    EXPECT_EQ(ordered(nodes), (std::vector<uint32_t>{0, 1, 2, 3}));
    // An estimate with a higher index and an equal value never jumps an exact one.
    std::vector<RankNode> b = {node(40), node(40)};
    b[1].exact = true;
    EXPECT_EQ(ordered(b), (std::vector<uint32_t>{1, 0}));
}

// k larger than n: everything is read, nothing breaks.
TEST(RankTop, KLargerThanN) {
    std::vector<RankNode> nodes = {node(3), node(30), node(20)};
    Reader rd{nodes, {1, 10, 0}, {}};
    ManualClock clock;
    std::vector<uint32_t> scratch;
    RankTopStats st = rank_top(nodes, 50, Duration::max(), clock, rd, scratch);
    EXPECT_EQ(st.stat_read, 3u);
    EXPECT_EQ(rd.reads, (std::vector<uint32_t>{1, 2, 0}));
    EXPECT_EQ(ordered(nodes), (std::vector<uint32_t>{1, 2, 0}));  // 20 and 20: by index
    std::vector<RankNode> none;
    EXPECT_EQ(rank_top(none, 8, Duration::max(), clock, rd, scratch).stat_read, 0u);
    EXPECT_EQ(rank_top(nodes, 0, Duration::max(), clock, rd, scratch).stat_read, 0u);
}

// The deadline counts only after k reads, then stops at once; a clock that
// ticks per reading makes the count exact.
TEST(RankTop, DeadlineHitAfterKReads) {
    std::vector<RankNode> nodes;
    std::vector<uint64_t> cached;
    for (int i = 0; i < 40; ++i) {
        nodes.push_back(node(100 + i));
        cached.push_back(99 + i);  // all page cache: nothing can be ruled out
    }
    Reader rd{nodes, cached, {}};
    std::vector<uint32_t> scratch;
    ManualClock past(std::chrono::seconds(10));
    RankTopStats st = rank_top(nodes, 4, std::chrono::seconds(1), past, rd, scratch);
    EXPECT_TRUE(st.deadline_hit);
    EXPECT_EQ(st.stat_read, 4u);  // the top still got its exact values
    // All page cache (working set 1 MiB each): every next usage is above the
    // bar, so only the deadline stops the reads. The clock ticks 1 us per
    // reading and is read once per read after the first k: readings at 1 and
    // 2 us are before a 3 us deadline, the one at 3 us is not.
    std::vector<RankNode> cache;
    std::vector<uint64_t> inactive;
    for (int i = 0; i < 40; ++i) {
        cache.push_back(node(100 - i));
        inactive.push_back(99 - i);
    }
    Reader rc{cache, inactive, {}};
    TickClock tick(std::chrono::microseconds(1));
    st = rank_top(cache, 1, std::chrono::microseconds(3), tick, rc, scratch);
    EXPECT_TRUE(st.deadline_hit);
    EXPECT_EQ(st.stat_read, 3u);
    EXPECT_EQ(tick.readings(), 3);
    // Without a deadline all 40 are read (nothing can be ruled out).
    Reader rall{cache, inactive, {}};
    ManualClock still;
    EXPECT_EQ(rank_top(cache, 1, Duration::max(), still, rall, scratch).stat_read, 40u);
}

// Vanished and never-read nodes rank last and are not read.
TEST(RankTop, GoneAndUnreadRankLast) {
    std::vector<RankNode> nodes = {node(500), node(5), RankNode{}, node(50)};
    nodes[0].gone = true;
    Reader rd{nodes, {0, 0, 0, 0}, {}};
    ManualClock clock;
    std::vector<uint32_t> scratch;
    rank_top(nodes, 8, Duration::max(), clock, rd, scratch);
    EXPECT_EQ(rd.reads, (std::vector<uint32_t>{3, 1}));
    EXPECT_EQ(ordered(nodes), (std::vector<uint32_t>{3, 1, 0, 2}));
}
