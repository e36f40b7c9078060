// When CgroupMonitor re-lists the cgroup tree: at once when a watched
// directory's link count changes, and otherwise only at the 60 s safety net
// (issue 17: a re-listing every 10 s was most of a calm refresh's cost). Time
// is a ManualClock: the interval is exact, whatever the machine's speed.
#include <gtest/gtest.h>

#include "cgroup/cgroup_monitor.hpp"
#include "fixture.hpp"

using namespace oomguard;
using namespace oomguard::test;
using std::chrono::seconds;

TEST(CgroupStructure, ACalmTreeIsReListedOnlyByTheSafetyNet) {
    for (auto v : {CgroupVersion::V1, CgroupVersion::V2}) {
        TempDir t;
        FakeCgroupFs fs(t / "cg", v);
        fs.cgroup("kubepods", 0);
        fs.cgroup("kubepods/besteffort", 0);
        fs.cgroup("kubepods/besteffort/pod" + pod_uid(1), 10 * MiB);
        ManualClock clock(seconds(1000));
        CgroupMonitor m(clock);
        CgroupMonitor::Settings s;  // the daemon's default interval
        s.cgroup_root = t / "cg";
        ASSERT_TRUE(m.configure(s));
        EXPECT_TRUE(m.refresh(seconds(1)).restructured);
        for (int i = 1; i <= 5; ++i) {  // the calm refreshes, every 10 s
            clock.advance(seconds(10));
            EXPECT_FALSE(m.refresh(seconds(1)).restructured) << "at +" << 10 * i << " s";
        }
        clock.advance(seconds(10));  // 60 s after the last listing
        EXPECT_TRUE(m.refresh(seconds(1)).restructured);
        // A new pod changes its QoS level's link count: seen at once.
        clock.advance(seconds(10));
        fs.cgroup("kubepods/besteffort/pod" + pod_uid(2), 20 * MiB);
        EXPECT_TRUE(m.refresh(seconds(1)).restructured);
        ASSERT_EQ(m.ranked().size(), 2u);
        EXPECT_EQ(m.ranked()[0].pod_uid, pod_uid(2));
    }
}

// A host where kubelet (--cgroup-root=/kubelet, cgroupfs) starts after oomguard:
// the monitor has listed the tree once, with "kubelet" and "system.slice" only.
struct LateKubelet {
    TempDir t;
    FakeCgroupFs fs{t / "cg", CgroupVersion::V2};
    ManualClock clock{seconds(1000)};
    CgroupMonitor m{clock};
    LateKubelet() {
        fs.cgroup("kubelet", 0);
        fs.cgroup("system.slice", 0);
        CgroupMonitor::Settings s;
        s.cgroup_root = t / "cg";
        EXPECT_TRUE(m.configure(s));
        m.refresh(seconds(1));
    }
    void start_kubelet(unsigned pod) {
        fs.cgroup("kubelet/kubepods", 0);
        fs.cgroup("kubelet/kubepods/pod" + pod_uid(pod), 30 * MiB);
    }
};

// kubelet --cgroup-root=/kubelet (cgroupfs): kubepods appears inside a directory
// that exists already and is not watched, so no link count tells. The safety net
// finds it within its interval.
TEST(CgroupStructure, AKubepodsInsideAnUnwatchedDirectoryIsFoundWithinTheInterval) {
    LateKubelet k;
    auto& [t, fs, clock, m] = k;
    EXPECT_FALSE(m.kubernetes());
    clock.advance(seconds(5));
    k.start_kubelet(7);
    clock.advance(seconds(5));
    EXPECT_FALSE(m.refresh(seconds(1)).restructured);
    EXPECT_FALSE(m.kubernetes()) << "no watched directory changed";
    clock.advance(seconds(50));
    EXPECT_TRUE(m.refresh(seconds(1)).restructured);
    EXPECT_TRUE(m.kubernetes());
    ASSERT_EQ(m.ranked().size(), 1u);
    EXPECT_EQ(m.ranked()[0].pod_uid, pod_uid(7));
}

// The allocatable check (start, reload, metrics) may find kubepods before a
// re-listing does: the next refresh then re-lists, rather than ranking the old
// top-level cgroups as if they were pods until the safety net.
TEST(CgroupStructure, KubepodsFoundByTheAllocatableCheckIsListedAtTheNextRefresh) {
    LateKubelet k;
    auto& [t, fs, clock, m] = k;
    k.start_kubelet(3);
    EXPECT_TRUE(m.allocatable().kubernetes);
    clock.advance(seconds(10));
    EXPECT_TRUE(m.refresh(seconds(1)).restructured);
    ASSERT_EQ(m.ranked().size(), 1u);
    EXPECT_EQ(m.ranked()[0].pod_uid, pod_uid(3));
}
