// CgroupMonitor's refresh budget: round-robin progress under a tiny budget,
// exact counts on a clock that ticks per reading, and memory.stat read only
// where it can change the top. Time is a ManualClock or TickClock wherever the
// assertion is about the budget, never the machine's speed.
#include <gtest/gtest.h>

#include "cgroup/cgroup_monitor.hpp"
#include "fixture.hpp"
#include "tick_clock.hpp"

using namespace oomguard;
using namespace oomguard::test;

TEST(CgroupMonitor, TinyBudgetStillMakesProgressRoundRobin) {
    TempDir t;
    FakeCgroupFs fs(t / "cg", CgroupVersion::V2);
    fs.cgroup("kubepods", 0);
    for (unsigned i = 0; i < 100; ++i) fs.cgroup("kubepods/pod" + pod_uid(i), (i + 1) * MiB);
    CgroupMonitor m;
    CgroupMonitor::Settings s;
    s.cgroup_root = t / "cg";
    ASSERT_TRUE(m.configure(s));
    auto st = m.refresh(Duration(0));
    EXPECT_TRUE(st.deadline_hit);
    EXPECT_EQ(st.read, 16u);  // 8 previously heaviest + 8 round-robin
    EXPECT_EQ(st.stale, 100u - 16u);
    for (int i = 0; i < 12; ++i) m.refresh(Duration(0));
    auto r = m.ranked();
    ASSERT_EQ(r.size(), 100u);  // every pod was read at least once
    EXPECT_EQ(r[0].pod_uid, pod_uid(99));
    // A budget that suffices reads them all. On a clock that stands still the
    // budget is never used up, however slow the machine (was: the real clock).
    ManualClock still;
    CgroupMonitor calm(still);
    ASSERT_TRUE(calm.configure(s));
    auto full = calm.refresh(std::chrono::seconds(5));
    EXPECT_EQ(full.read, 100u);
    EXPECT_EQ(full.stale, 0u);
    EXPECT_FALSE(full.deadline_hit);
    EXPECT_EQ(full.elapsed, Duration(0));
}

// The budget on a clock that ticks 1 us per reading: exactly how far a refresh
// gets is known. Reading 1 is the start (deadline 1 + 20 us), reading 2 the
// restructure's stamp; the usage loop reads the clock once per cgroup after the
// 8 previously heaviest and the first 8 others, and stops at the reading of 21 us.
TEST(CgroupMonitor, RefreshBudgetIsExactOnATickingClock) {
    TempDir t;
    FakeCgroupFs fs(t / "cg", CgroupVersion::V2);
    fs.cgroup("kubepods", 0);
    for (unsigned i = 0; i < 100; ++i) fs.cgroup("kubepods/pod" + pod_uid(i), (i + 1) * MiB);
    TickClock tick(std::chrono::microseconds(1));
    CgroupMonitor m(tick);
    CgroupMonitor::Settings s;
    s.cgroup_root = t / "cg";
    ASSERT_TRUE(m.configure(s));
    auto st = m.refresh(std::chrono::microseconds(20));
    EXPECT_TRUE(st.restructured);
    EXPECT_TRUE(st.deadline_hit);
    EXPECT_EQ(st.read, 8u + 8u + 18u);  // head, the first 8 others, then readings 3..20
    EXPECT_EQ(st.stale, 100u - st.read);
    EXPECT_EQ(st.stat_read, 8u);  // the top is exact even past the deadline
    // The next refresh goes on where this one stopped (round-robin), no restructure.
    auto again = m.refresh(std::chrono::microseconds(20));
    EXPECT_FALSE(again.restructured);
    EXPECT_EQ(again.read, 8u + 8u + 19u);  // one clock reading fewer: no restructure stamp
    EXPECT_EQ(again.elapsed, std::chrono::microseconds(20 + 1));  // and the closing reading
}

TEST(CgroupMonitor, MemoryStatIsReadOnlyWhereItCanMatter) {
    TempDir t;
    FakeCgroupFs fs(t / "cg", CgroupVersion::V1);
    fs.cgroup("kubepods", 0);
    // 60 pods: usage grows with i, but every third pod is mostly page cache, so
    // the working-set order differs from the usage order.
    std::vector<std::pair<uint64_t, unsigned>> truth;
    for (unsigned i = 0; i < 60; ++i) {
        uint64_t usage = (100 + i * 10) * MiB;
        uint64_t cache = i % 3 == 0 ? usage - 5 * MiB : 10 * MiB;
        fs.cgroup("kubepods/pod" + pod_uid(i), usage, cache);
        truth.emplace_back(usage - cache, i);
    }
    std::sort(truth.rbegin(), truth.rend());
    CgroupMonitor m;
    CgroupMonitor::Settings s;
    s.cgroup_root = t / "cg";
    ASSERT_TRUE(m.configure(s));
    auto st = m.refresh(std::chrono::seconds(1));
    EXPECT_EQ(st.read, 60u);
    EXPECT_LT(st.stat_read, 20u) << "memory.stat should be read for the candidates only";
    EXPECT_GE(st.stat_read, CgroupMonitor::kExactTop);
    auto r = m.ranked();
    ASSERT_EQ(r.size(), 60u);
    for (size_t k = 0; k < CgroupMonitor::kExactTop; ++k) {
        EXPECT_EQ(r[k].pod_uid, pod_uid(truth[k].second)) << "rank " << k;
        EXPECT_EQ(r[k].working_set, truth[k].first);
        EXPECT_FALSE(r[k].estimate);
    }
    size_t estimates = 0;
    for (const auto& c : r) estimates += c.estimate;
    EXPECT_EQ(estimates, 60u - st.stat_read);
    // A background sweep refreshes the rest within its budget.
    auto sw = m.refresh(std::chrono::seconds(1), /*sweep=*/true);
    EXPECT_EQ(sw.stat_read, 60u);
    r = m.ranked();
    for (size_t k = 0; k < r.size(); ++k) {
        EXPECT_EQ(r[k].working_set, truth[k].first) << "rank " << k;
        EXPECT_FALSE(r[k].estimate);
    }
    // The heaviest by working set changes: found without a sweep.
    fs.set_usage("kubepods/pod" + pod_uid(3), 5000 * MiB, 10 * MiB);
    m.refresh(std::chrono::seconds(1));
    EXPECT_EQ(m.ranked()[0].pod_uid, pod_uid(3));
    EXPECT_EQ(m.ranked()[0].working_set, 4990 * MiB);
}
