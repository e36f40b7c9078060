// Names from kubelet's log tree, without the API server.
#include "cgroup/pod_names.hpp"

#include <gtest/gtest.h>

#include "fixture.hpp"
#include "tick_clock.hpp"

using namespace oomguard;
using namespace oomguard::test;

TEST(PodLogNames, PodDirectory) {
    auto p = parse_pod_log_dir("default_web-7d9f_" + pod_uid(1));
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ(p->namespace_, "default");
    EXPECT_EQ(p->name, "web-7d9f");
    EXPECT_EQ(p->uid, pod_uid(1));
    for (const char* bad :
         {"default_web", "a_b_c_d", "_web_uid", "ns__uid", "ns_web_", "", "plain"}) {
        auto r = parse_pod_log_dir(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_NE(r.error().message.find("<namespace>_<name>_<uid>"), std::string::npos);
    }
}

TEST(PodLogNames, ContainerLink) {
    auto l = parse_container_log_name("web-7d9f_default_app-" + container_id(3) + ".log");
    ASSERT_TRUE(l) << l.error().message;
    EXPECT_EQ(l->pod_name, "web-7d9f");
    EXPECT_EQ(l->namespace_, "default");
    EXPECT_EQ(l->container, "app");
    EXPECT_EQ(l->container_id, container_id(3));
    // Container names may contain dashes; the id is after the last one.
    l = parse_container_log_name("p_ns_side-car-" + container_id(4) + ".log");
    ASSERT_TRUE(l);
    EXPECT_EQ(l->container, "side-car");
    const std::pair<std::string, const char*> bad[] = {
        {"p_ns_app-xyz.log", "id"},
        {"p_ns_app-" + container_id(3), ".log suffix"},
        {"p_app-" + container_id(3) + ".log", "three non-empty parts"},
        {".log", "id"},
        {"", ".log suffix"}};
    for (const auto& [name, why] : bad) {
        auto r = parse_container_log_name(name);
        ASSERT_FALSE(r) << name;
        EXPECT_NE(r.error().message.find(why), std::string::npos) << r.error().message;
    }
}

TEST(PodNameResolver, PodsContainersAndMalformedEntries) {
    TempDir t;
    FakePodLogs logs(t / "log");
    logs.pod("default", "web", pod_uid(1));
    logs.container("default", "web", pod_uid(1), "app", container_id(1));
    logs.container("default", "web", pod_uid(1), "sidecar", container_id(2));
    logs.pod("kube-system", "coredns", pod_uid(2));
    makeDir(logs.pods_dir() + "/not-a-pod-dir");

    PodNameResolver r;
    r.set_dir(logs.pods_dir());
    const auto* p = r.pod(pod_uid(1));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->namespace_, "default");
    EXPECT_EQ(p->name, "web");
    EXPECT_EQ(r.container(pod_uid(1), container_id(1)), "app");
    EXPECT_EQ(r.container(pod_uid(1), container_id(2)), "sidecar");
    // The link names another pod: not this pod's container.
    EXPECT_EQ(r.container(pod_uid(2), container_id(1)), "");
    EXPECT_EQ(r.container(pod_uid(1), container_id(9)), "");
    auto dirs = r.container_dirs(pod_uid(1));
    std::sort(dirs.begin(), dirs.end());
    EXPECT_EQ(dirs, (std::vector<std::string>{"app", "sidecar"}));
    ASSERT_EQ(r.malformed().size(), 1u);
    EXPECT_EQ(r.malformed()[0], "not-a-pod-dir");
    EXPECT_EQ(r.pod(pod_uid(3)), nullptr);

    // A pod that appears later is found once the re-list interval passed.
    r.min_relist = std::chrono::seconds(0);
    logs.pod("team", "late", pod_uid(3));
    ASSERT_NE(r.pod(pod_uid(3)), nullptr);
    EXPECT_EQ(r.pod(pod_uid(3))->name, "late");
}

TEST(PodNameResolver, MissingDirectoryIsNotAnError) {
    PodNameResolver r;
    r.set_dir("/nonexistent/var/log/pods");
    EXPECT_EQ(r.pod(pod_uid(1)), nullptr);
    EXPECT_EQ(r.container(pod_uid(1), container_id(1)), "");
    EXPECT_TRUE(r.container_dirs(pod_uid(1)).empty());
}

// Issue 10, defect 10: a listing stops at the deadline (100k stale log
// directories take ~160 ms) and goes on later; entries read so far are found,
// vanished ones are dropped, and an unchanged directory is not listed again.
TEST(PodNameResolver, ListingIsBoundedByTheDeadlineAndResumes) {
    TempDir t;
    FakePodLogs logs(t / "log");
    makeDir(logs.pods_dir());
    for (int i = 0; i < 20000; ++i)
        makeDir(logs.pods_dir() + "/stale_pod-" + std::to_string(i) + "_uid-" + std::to_string(i));
    logs.pod("default", "web", pod_uid(1));
    // Time ticks 1 us per clock reading: a 200 us deadline is 200 readings
    // (one per 16 entries), whatever the machine's speed (was: the real clock
    // and a 20 ms bound).
    TickClock tick(std::chrono::microseconds(1));
    PodNameResolver r(tick);
    r.set_dir(logs.pods_dir());
    r.min_relist = std::chrono::milliseconds(0);
    r.set_deadline(tick.now() + std::chrono::microseconds(200));
    const int r0 = tick.readings();
    (void)r.pod("not-there");
    EXPECT_LE(tick.readings() - r0, 202) << "the listing ignored its deadline";
    EXPECT_TRUE(r.listing()) << "20k entries listed within 200 us?";
    int slices = 0;
    while (r.listing() && slices < 100000) {
        r.set_deadline(tick.now() + std::chrono::microseconds(200));
        r.resume();
        ++slices;
    }
    r.set_deadline(Duration::max());
    EXPECT_FALSE(r.listing());
    EXPECT_GT(slices, 1);
    const auto* p = r.pod(pod_uid(1));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->name, "web");
    ASSERT_NE(r.pod("uid-19999"), nullptr);
    // Unchanged directory: a miss does not list again.
    EXPECT_EQ(r.pod("still-not-there"), nullptr);
    EXPECT_FALSE(r.listing());
    // A pod gone: the next listing drops it.
    removeTree(logs.pods_dir() + "/stale_pod-7_uid-7");
    EXPECT_EQ(r.pod("still-not-there"), nullptr);
    // Without a deadline of ours each call is one slice (kDefaultSlice) too.
    for (int i = 0; i < 100000 && r.listing(); ++i) r.resume();
    EXPECT_FALSE(r.listing());
    EXPECT_EQ(r.pod("uid-7"), nullptr);
    EXPECT_NE(r.pod("uid-8"), nullptr);
}
