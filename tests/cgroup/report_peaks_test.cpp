// merge_peaks over plain reports on the stack: the trigger's report (read
// after the trigger, racing the kernel's kill) keeps the peaks of the report
// from just before it (issue 13: "helper" named instead of the killed "leaker").
#include "cgroup/report_peaks.hpp"

#include <gtest/gtest.h>

using namespace oomguard;

namespace {

constexpr uint64_t MiB = 1ull << 20;

CgroupInfo cg(const std::string& path, uint64_t ws_mib, const std::string& name = "") {
    CgroupInfo c;
    c.path = path;
    c.working_set = ws_mib * MiB;
    c.usage = c.working_set + MiB;
    c.inactive_file = MiB;
    c.container_name = name;
    return c;
}

HeaviestReport report(std::vector<CgroupInfo> pods, std::vector<CgroupInfo> containers = {}) {
    HeaviestReport r;
    r.valid = true;
    r.kubernetes = true;
    r.top = std::move(pods);
    r.containers = std::move(containers);
    r.ranked = r.top.size();
    return r;
}

std::vector<std::string> paths(const std::vector<CgroupInfo>& v) {
    std::vector<std::string> out;
    for (const auto& c : v) out.push_back(c.path);
    return out;
}

}  // namespace

TEST(ReportPeaks, KilledContainerKeepsItsReadingFromBeforeTheTrigger) {
    // Before: the leaker is the pod's heaviest. After: the kernel is freeing it.
    HeaviestReport before =
        report({cg("/pod-a", 900), cg("/pod-b", 300)},
               {cg("/pod-a/leaker", 800, "leaker"), cg("/pod-a/helper", 100, "helper")});
    HeaviestReport after =
        report({cg("/pod-a", 900), cg("/pod-b", 300)},
               {cg("/pod-a/helper", 100, "helper"), cg("/pod-a/leaker", 20, "leaker")});
    PeakMerge m = merge_peaks(before, after, 5);
    EXPECT_EQ(m.containers, 1u);
    EXPECT_EQ(m.pods, 0u);
    EXPECT_FALSE(m.top_changed);
    ASSERT_EQ(after.containers.size(), 2u);
    EXPECT_EQ(after.containers[0].container_name, "leaker");
    EXPECT_EQ(after.containers[0].working_set, 800 * MiB);
    EXPECT_EQ(after.containers[0].usage, 801 * MiB);
    EXPECT_NE(after.containers[0].note.find("before the trigger"), std::string::npos);
    EXPECT_TRUE(after.containers[1].note.empty());
}

TEST(ReportPeaks, GrowthAfterTheReportIsKept) {
    // A fast leak: the reading after the trigger is the larger one.
    HeaviestReport before =
        report({cg("/pod-a", 400)}, {cg("/pod-a/leaker", 300), cg("/pod-a/helper", 100)});
    HeaviestReport after =
        report({cg("/pod-a", 700)}, {cg("/pod-a/leaker", 600), cg("/pod-a/helper", 100)});
    PeakMerge m = merge_peaks(before, after, 5);
    EXPECT_EQ(m.pods + m.containers, 0u);
    EXPECT_EQ(after.top[0].working_set, 700 * MiB);
    EXPECT_EQ(after.containers[0].working_set, 600 * MiB);
    EXPECT_TRUE(after.containers[0].note.empty());
}

TEST(ReportPeaks, ContainerWhoseCgroupWentWithTheKillComesBack) {
    HeaviestReport before =
        report({cg("/pod-a", 900)}, {cg("/pod-a/leaker", 800, "leaker"), cg("/pod-a/helper", 100)});
    HeaviestReport after = report({cg("/pod-a", 150)}, {cg("/pod-a/helper", 100)});
    PeakMerge m = merge_peaks(before, after, 5);
    EXPECT_EQ(m.pods, 1u);
    EXPECT_EQ(m.containers, 1u);
    EXPECT_EQ(paths(after.containers),
              (std::vector<std::string>{"/pod-a/leaker", "/pod-a/helper"}));
    EXPECT_EQ(after.top[0].working_set, 900 * MiB);
}

TEST(ReportPeaks, PodThatFellOutOfTheTopReturnsSortedAndCut) {
    // The killed pod dropped below the others after the trigger (or out of the list).
    HeaviestReport before = report({cg("/victim", 900), cg("/p1", 300), cg("/p2", 200)});
    HeaviestReport after = report({cg("/p1", 300), cg("/p2", 200), cg("/p3", 150)});
    PeakMerge m = merge_peaks(before, after, 3);
    EXPECT_EQ(m.pods, 1u);
    EXPECT_TRUE(m.top_changed);  // its containers are to be listed anew
    EXPECT_EQ(m.containers, 0u);
    EXPECT_EQ(paths(after.top), (std::vector<std::string>{"/victim", "/p1", "/p2"}));
}

TEST(ReportPeaks, ContainersOfAnotherPodAreNotMixed) {
    HeaviestReport before = report({cg("/pod-a", 500), cg("/pod-b", 450)}, {cg("/pod-a/x", 480)});
    HeaviestReport after = report({cg("/pod-b", 600), cg("/pod-a", 500)}, {cg("/pod-b/y", 590)});
    PeakMerge m = merge_peaks(before, after, 5);
    EXPECT_FALSE(m.top_changed);
    EXPECT_EQ(m.containers, 0u);
    EXPECT_EQ(paths(after.containers), (std::vector<std::string>{"/pod-b/y"}));
}

TEST(ReportPeaks, NothingFromAnInvalidOrDifferentKindOfReport) {
    HeaviestReport after = report({cg("/p1", 300)});
    HeaviestReport none;  // no report before the trigger
    EXPECT_EQ(merge_peaks(none, after, 5).pods, 0u);
    HeaviestReport host = report({cg("/system.slice", 900)});
    host.kubernetes = false;  // a ranking of another kind (kubepods appeared since)
    PeakMerge m = merge_peaks(host, after, 5);
    EXPECT_EQ(m.pods, 0u);
    EXPECT_EQ(paths(after.top), (std::vector<std::string>{"/p1"}));
}

TEST(ReportPeaks, NamesAndDetailsOfTheNewReadingStay) {
    CgroupInfo old = cg("/pod-a", 900);
    CgroupInfo now = cg("/pod-a", 100);
    now.pod_name = "alpha";
    now.limit_known = true;
    now.limit = 2048 * MiB;
    HeaviestReport before = report({old});
    HeaviestReport after = report({now});
    merge_peaks(before, after, 5);
    EXPECT_EQ(after.top[0].working_set, 900 * MiB);
    EXPECT_EQ(after.top[0].pod_name, "alpha");
    EXPECT_EQ(after.top[0].limit, 2048 * MiB);
}
