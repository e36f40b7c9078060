// Victim choice of the kill-cgroup action on fixture trees: QoS order,
// excluded namespaces, Guaranteed only when allowed, nothing outside kubepods.
#include "cgroup/cgroup_killer.hpp"

#include <gtest/gtest.h>

#include "fixture.hpp"

using namespace oomguard;
using namespace oomguard::test;

namespace {

struct Node {
    TempDir tmp;
    FakeCgroupFs fs{tmp / "cg", CgroupVersion::V2};
    FakePodLogs logs{tmp / "log"};
    KubeLayout L{CgroupDriver::Cgroupfs, Runtime::Containerd};
    CgroupMonitor m;

    Node() {
        fs.cgroup("kubepods", 0);
        fs.cgroup("kubepods/burstable", 0);
        fs.cgroup("kubepods/besteffort", 0);
    }
    void pod(QosClass q, unsigned n, const std::string& ns, uint64_t ws_mib, bool with_logs = true,
             bool with_container = true) {
        const std::string dir = L.pod_dir(q, pod_uid(n));
        fs.cgroup(dir, ws_mib * MiB);
        if (with_logs) logs.pod(ns, "pod" + std::to_string(n), pod_uid(n));
        if (!with_container) return;
        fs.cgroup(dir + "/" + container_id(n), ws_mib * MiB);
        if (with_logs)
            logs.container(ns, "pod" + std::to_string(n), pod_uid(n), "main", container_id(n));
    }
    VictimChoice choose(KillPolicy p = {}) {
        CgroupMonitor::Settings s;
        s.cgroup_root = tmp / "cg";
        s.pod_logs_dir = logs.pods_dir();
        EXPECT_TRUE(m.configure(s));
        m.refresh(std::chrono::seconds(1));
        return choose_victim(m, p);
    }
};

}  // namespace

TEST(VictimChoice, BestEffortBeforeHeavierBurstableAndGuaranteed) {
    Node n;
    n.pod(QosClass::Guaranteed, 1, "default", 3000);
    n.pod(QosClass::Burstable, 2, "default", 2000);
    n.pod(QosClass::BestEffort, 3, "default", 100);
    n.pod(QosClass::BestEffort, 4, "default", 300);
    auto v = n.choose();
    ASSERT_TRUE(v.found) << v.why_none;
    EXPECT_EQ(v.pod.pod_uid, pod_uid(4));  // the heaviest BestEffort
    EXPECT_EQ(v.container.container_id, container_id(4));
    EXPECT_EQ(v.container.container_name, "main");
    EXPECT_EQ(v.container.kind, CgroupKind::Container);
}

TEST(VictimChoice, ExcludedAndUnknownNamespacesAreSkipped) {
    Node n;
    n.pod(QosClass::BestEffort, 1, "kube-system", 900);
    n.pod(QosClass::BestEffort, 2, "", 800, /*with_logs=*/false);
    n.pod(QosClass::BestEffort, 3, "default", 10, true, /*with_container=*/false);
    n.pod(QosClass::Burstable, 4, "default", 50);
    auto v = n.choose();
    ASSERT_TRUE(v.found) << v.why_none;
    EXPECT_EQ(v.pod.pod_uid, pod_uid(4));
    ASSERT_EQ(v.skipped.size(), 3u);
    EXPECT_NE(v.skipped[0].find("kube-system is excluded"), std::string::npos) << v.skipped[0];
    EXPECT_NE(v.skipped[1].find("namespace unknown"), std::string::npos) << v.skipped[1];
    EXPECT_NE(v.skipped[2].find("no container"), std::string::npos) << v.skipped[2];

    // With no exclusions, a pod without names is fair game.
    auto all = n.choose(KillPolicy{{}, false});
    ASSERT_TRUE(all.found);
    EXPECT_EQ(all.pod.pod_uid, pod_uid(1));
}

TEST(VictimChoice, GuaranteedOnlyWhenAllowed) {
    Node n;
    n.pod(QosClass::Guaranteed, 1, "default", 900);
    n.pod(QosClass::BestEffort, 2, "kube-system", 100);
    auto none = n.choose();
    EXPECT_FALSE(none.found);
    EXPECT_NE(none.why_none.find("no eligible pod"), std::string::npos);
    ASSERT_EQ(none.skipped.size(), 2u);
    auto g = n.choose(KillPolicy{{"kube-system"}, true});
    ASSERT_TRUE(g.found);
    EXPECT_EQ(g.pod.pod_uid, pod_uid(1));
    EXPECT_EQ(g.pod.qos, QosClass::Guaranteed);
}

TEST(VictimChoice, NothingWithoutKubepods) {
    TempDir t;
    FakeCgroupFs fs(t / "cg", CgroupVersion::V2);
    fs.cgroup("system.slice/big.service", 5000 * MiB);
    CgroupMonitor m;
    CgroupMonitor::Settings s;
    s.cgroup_root = t / "cg";
    ASSERT_TRUE(m.configure(s));
    m.refresh(std::chrono::seconds(1));
    auto v = choose_victim(m, {});
    EXPECT_FALSE(v.found);
    EXPECT_NE(v.why_none.find("no kubepods"), std::string::npos);
    CgroupInfo c;
    c.path = "/system.slice/big.service";
    c.kind = CgroupKind::Container;
    auto o = kill_container_cgroup(m, c);
    EXPECT_FALSE(o.ok);
    EXPECT_FALSE(o.error.empty());
}

TEST(KillCgroup, RefusesAnythingButAContainerUnderKubepods) {
    Node n;
    n.pod(QosClass::BestEffort, 1, "default", 10);
    n.choose();
    for (const std::string& path : std::vector<std::string>{
             "/kubepods", "/kubepods/besteffort", "/kubepods/besteffort/pod" + pod_uid(1),
             "/kubepods/besteffort/pod" + pod_uid(1) + "/../../..", "/system.slice/x.service",
             "/kubepods/../etc/" + container_id(1),
             "/kubepods-evil/pod" + pod_uid(1) + "/" + container_id(1)}) {
        CgroupInfo c;
        c.path = path;
        c.kind = CgroupKind::Container;
        auto o = kill_container_cgroup(n.m, c);
        EXPECT_FALSE(o.ok) << path;
        EXPECT_NE(o.error.find("refusing"), std::string::npos) << path << ": " << o.error;
    }
}

TEST(KillCgroup, PathInside) {
    EXPECT_TRUE(path_inside("/kubepods/a/b", "/kubepods"));
    EXPECT_FALSE(path_inside("/kubepods", "/kubepods"));
    EXPECT_FALSE(path_inside("/kubepods/", "/kubepods"));
    EXPECT_FALSE(path_inside("/kubepodsx/a", "/kubepods"));
    EXPECT_FALSE(path_inside("/kubepods/a/../b", "/kubepods"));
    EXPECT_FALSE(path_inside("/kubepods/./a", "/kubepods"));
    EXPECT_FALSE(path_inside("/kubepods//a", "/kubepods"));
    EXPECT_FALSE(path_inside("/a", ""));
}
