// CgroupMonitor against fixture trees: every layout (v1/v2 x cgroupfs/systemd x
// containerd/cri-o/docker, Guaranteed pods directly under kubepods), the
// working-set ranking with a page-cache-heavy decoy, names from a fake
// /var/log/pods, sandboxes, conmon, unknown names, structure changes, budgets.
#include "cgroup/cgroup_monitor.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "fixture.hpp"

using namespace oomguard;
using namespace oomguard::test;

namespace {

// A node with four pods: Burstable "default/api" is the heaviest by working set,
// BestEffort "cache/reader" has the largest usage but it is all page cache.
struct Node {
    TempDir tmp;
    FakeCgroupFs fs;
    FakePodLogs logs;
    FakeProc proc;
    KubeLayout L;

    Node(CgroupVersion v, KubeLayout layout)
        : fs(tmp / "cgroup", v), logs(tmp / "log"), proc(tmp / "proc"), L(layout) {
        makeDir(tmp / "cgroup");
        // memory.oom.group as on a real node (containerd 1.6 + kubelet's
        // settings, seen in the node lab): 1 on containers only, 0 on
        // kubepods, the QoS levels, the pods and the sandbox.
        fs.cgroup(L.kubepods(), 2000 * MiB, 0, 0, 0);
        fs.cgroup(L.qos_dir(QosClass::Burstable), 500 * MiB, 0, 0, 0);
        fs.cgroup(L.qos_dir(QosClass::BestEffort), 1100 * MiB, 0, 0, 0);

        pod(QosClass::Guaranteed, 10, "prod", "db-0", 210, 10, 1024 * MiB,
            {{"postgres", 101, 200}});
        pod(QosClass::Burstable, 11, "default", "api", 420, 20, 0,
            {{"api", 111, 350}, {"log-shipper", 112, 40}});
        pod(QosClass::BestEffort, 12, "batch", "cruncher", 110, 10, 0, {{"work", 121, 100}});
        pod(QosClass::BestEffort, 13, "cache", "reader", 900, 880, 0, {{"reader", 131, 15}});
        if (L.runtime == Runtime::Crio)
            fs.cgroup(L.pod_dir(QosClass::Burstable, pod_uid(11)) + "/" +
                          L.conmon_name(container_id(113)),
                      2 * MiB);
    }

    struct C {
        std::string name;
        unsigned id;
        uint64_t ws_mib;
    };
    void pod(QosClass q, unsigned n, const std::string& ns, const std::string& name,
             uint64_t usage_mib, uint64_t inactive_mib, uint64_t limit, std::vector<C> containers) {
        const std::string dir = L.pod_dir(q, pod_uid(n));
        fs.cgroup(dir, usage_mib * MiB, inactive_mib * MiB, limit, 0);
        logs.pod(ns, name, pod_uid(n));
        // The pause container: no log, its process is "pause".
        const std::string sandbox = dir + "/" + L.container_name(container_id(n * 10));
        fs.cgroup(sandbox, 1 * MiB, 0, 0, 0);
        fs.procs(sandbox, std::to_string(1000 + n) + "\n");
        proc.comm(static_cast<int>(1000 + n), "pause");
        for (const auto& c : containers) {
            const std::string cdir = dir + "/" + L.container_name(container_id(c.id));
            fs.cgroup(cdir, (c.ws_mib + 5) * MiB, 5 * MiB, limit);
            fs.procs(cdir, std::to_string(2000 + c.id) + "\n");
            proc.comm(static_cast<int>(2000 + c.id), c.name);
            logs.container(ns, name, pod_uid(n), c.name, container_id(c.id));
        }
    }

    CgroupMonitor::Settings settings() const {
        CgroupMonitor::Settings s;
        s.cgroup_root = tmp / "cgroup";
        s.proc_root = proc.dir();
        s.pod_logs_dir = logs.pods_dir();
        return s;
    }
};

struct LayoutCase {
    CgroupVersion version;
    CgroupDriver driver;
    Runtime runtime;
};

std::string case_name(const testing::TestParamInfo<LayoutCase>& i) {
    std::string s = i.param.version == CgroupVersion::V1 ? "V1" : "V2";
    s += i.param.driver == CgroupDriver::Systemd ? "Systemd" : "Cgroupfs";
    s += i.param.runtime == Runtime::Containerd ? "Containerd"
         : i.param.runtime == Runtime::Crio     ? "Crio"
                                                : "Docker";
    return s;
}

class Layouts : public testing::TestWithParam<LayoutCase> {};

}  // namespace

TEST_P(Layouts, RanksPodsByWorkingSetAndNamesTheHeaviest) {
    const auto& p = GetParam();
    Node node(p.version, KubeLayout{p.driver, p.runtime});
    CgroupMonitor m;
    Status configured = m.configure(node.settings());
    ASSERT_TRUE(configured) << configured.error().message;
    ASSERT_TRUE(m.kubernetes());
    EXPECT_EQ(m.kubepods_path(), "/" + node.L.kubepods());
    EXPECT_EQ(m.driver(), p.driver);
    EXPECT_EQ(m.hierarchy().version, p.version);

    auto st = m.refresh(std::chrono::seconds(1));
    EXPECT_TRUE(st.restructured);
    EXPECT_EQ(st.read, 4u);
    EXPECT_EQ(st.stale, 0u);
    EXPECT_TRUE(m.unclassified().empty())
        << m.unclassified()[0].path << ": " << m.unclassified()[0].reason;

    // Ranking by working set: the page-cache decoy (900 MiB usage, 20 MiB working set) is last.
    auto ranked = m.ranked();
    ASSERT_EQ(ranked.size(), 4u);
    EXPECT_EQ(ranked[0].pod_uid, pod_uid(11));
    EXPECT_EQ(ranked[1].pod_uid, pod_uid(10));
    EXPECT_EQ(ranked[2].pod_uid, pod_uid(12));
    EXPECT_EQ(ranked[3].pod_uid, pod_uid(13));
    EXPECT_EQ(ranked[3].usage, 900 * MiB);
    EXPECT_EQ(ranked[3].working_set, 20 * MiB);

    HeaviestReport r = m.report(5);
    ASSERT_TRUE(r.valid);
    ASSERT_TRUE(r.kubernetes);
    ASSERT_EQ(r.top.size(), 4u);
    const CgroupInfo& top = r.top[0];
    EXPECT_EQ(top.kind, CgroupKind::Pod);
    EXPECT_EQ(top.pod_uid, pod_uid(11));  // dashed, also for the systemd driver
    EXPECT_EQ(top.pod_namespace, "default");
    EXPECT_EQ(top.pod_name, "api");
    EXPECT_EQ(top.qos, QosClass::Burstable);
    EXPECT_EQ(top.working_set, 400 * MiB);
    EXPECT_TRUE(top.limit_known);
    EXPECT_FALSE(top.limit.has_value());  // unlimited ("max" or the v1 huge value)
    EXPECT_EQ(top.path, "/" + node.L.pod_dir(QosClass::Burstable, pod_uid(11)));
    EXPECT_EQ(r.top[1].qos, QosClass::Guaranteed);
    EXPECT_EQ(r.top[1].pod_name, "db-0");
    ASSERT_TRUE(r.top[1].limit.has_value());
    EXPECT_EQ(*r.top[1].limit, 1024 * MiB);
    EXPECT_EQ(r.top[2].qos, QosClass::BestEffort);
    EXPECT_EQ(r.top[3].qos, QosClass::BestEffort);

    // Containers of the heaviest pod only, heaviest first.
    const size_t expected = p.runtime == Runtime::Crio ? 4u : 3u;
    ASSERT_EQ(r.containers.size(), expected);
    const CgroupInfo& c = r.containers[0];
    EXPECT_EQ(c.kind, CgroupKind::Container);
    EXPECT_EQ(c.container_name, "api");
    EXPECT_EQ(c.container_id, container_id(111));
    EXPECT_EQ(c.runtime, node.L.expected_runtime());
    EXPECT_EQ(c.working_set, 350 * MiB);
    EXPECT_EQ(c.pod_name, "api");
    EXPECT_EQ(c.oom_group, p.version == CgroupVersion::V2 ? 1 : -1);
    EXPECT_EQ(r.containers[1].container_name, "log-shipper");
    int sandboxes = 0, conmons = 0;
    for (const auto& x : r.containers) {
        if (x.kind == CgroupKind::Sandbox) {
            ++sandboxes;
            EXPECT_EQ(x.container_id, container_id(110));
            EXPECT_TRUE(x.container_name.empty());
        }
        if (x.kind == CgroupKind::Conmon) {
            ++conmons;
            EXPECT_EQ(x.container_id, container_id(113));
        }
    }
    EXPECT_EQ(sandboxes, 1);
    EXPECT_EQ(conmons, p.runtime == Runtime::Crio ? 1 : 0);
}

INSTANTIATE_TEST_SUITE_P(
    AllLayouts, Layouts,
    testing::Values(LayoutCase{CgroupVersion::V1, CgroupDriver::Cgroupfs, Runtime::Containerd},
                    LayoutCase{CgroupVersion::V1, CgroupDriver::Cgroupfs, Runtime::Crio},
                    LayoutCase{CgroupVersion::V1, CgroupDriver::Cgroupfs, Runtime::Docker},
                    LayoutCase{CgroupVersion::V1, CgroupDriver::Systemd, Runtime::Containerd},
                    LayoutCase{CgroupVersion::V1, CgroupDriver::Systemd, Runtime::Crio},
                    LayoutCase{CgroupVersion::V1, CgroupDriver::Systemd, Runtime::Docker},
                    LayoutCase{CgroupVersion::V2, CgroupDriver::Cgroupfs, Runtime::Containerd},
                    LayoutCase{CgroupVersion::V2, CgroupDriver::Cgroupfs, Runtime::Crio},
                    LayoutCase{CgroupVersion::V2, CgroupDriver::Cgroupfs, Runtime::Docker},
                    LayoutCase{CgroupVersion::V2, CgroupDriver::Systemd, Runtime::Containerd},
                    LayoutCase{CgroupVersion::V2, CgroupDriver::Systemd, Runtime::Crio},
                    LayoutCase{CgroupVersion::V2, CgroupDriver::Systemd, Runtime::Docker}),
    case_name);

TEST(CgroupMonitor, HybridLayoutIsV1Memory) {
    TempDir t;
    FakeCgroupFs fs(t.path(), CgroupVersion::V1, /*hybrid=*/true);
    fs.cgroup("kubepods", 0);
    fs.cgroup("kubepods/pod" + pod_uid(1), 10 * MiB);
    CgroupMonitor m;
    CgroupMonitor::Settings s;
    s.cgroup_root = t.path();
    ASSERT_TRUE(m.configure(s));
    EXPECT_NE(m.hierarchy().layout.find("hybrid"), std::string::npos);
    m.refresh(std::chrono::seconds(1));
    auto r = m.ranked();
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].qos, QosClass::Guaranteed);
}

TEST(CgroupMonitor, UnknownNamesAreReportedAndLeftOut) {
    TempDir t;
    FakeCgroupFs fs(t / "cg", CgroupVersion::V2);
    fs.cgroup("kubepods", 0);
    fs.cgroup("kubepods/burstable", 0);
    fs.cgroup("kubepods/burstable/pod" + pod_uid(1), 50 * MiB);
    fs.cgroup("kubepods/burstable/pod" + pod_uid(1) + "/" + container_id(1), 40 * MiB);
    fs.cgroup("kubepods/burstable/pod" + pod_uid(1) + "/handmade", 30 * MiB);
    fs.cgroup("kubepods/burstable/podNOT-A-UID", 900 * MiB);
    fs.cgroup("kubepods/guaranteed", 900 * MiB);
    fs.cgroup("kubepods/something-else", 900 * MiB);
    CgroupMonitor m;
    CgroupMonitor::Settings s;
    s.cgroup_root = t / "cg";
    s.pod_logs_dir = t / "nonexistent";
    ASSERT_TRUE(m.configure(s));
    m.refresh(std::chrono::seconds(1));
    ASSERT_EQ(m.unclassified().size(), 3u);
    std::vector<std::string> paths;
    for (const auto& u : m.unclassified()) {
        paths.push_back(u.path);
        EXPECT_FALSE(u.reason.empty()) << u.path;
    }
    std::sort(paths.begin(), paths.end());
    EXPECT_EQ(paths,
              (std::vector<std::string>{"/kubepods/burstable/podNOT-A-UID", "/kubepods/guaranteed",
                                        "/kubepods/something-else"}));
    auto r = m.report(5);
    ASSERT_EQ(r.top.size(), 1u);
    EXPECT_EQ(r.top[0].pod_uid, pod_uid(1));
    EXPECT_TRUE(r.top[0].pod_name.empty());
    EXPECT_NE(r.top[0].note.find("no "), std::string::npos) << r.top[0].note;  // why it has no name
    ASSERT_EQ(r.containers.size(), 2u);
    EXPECT_EQ(r.containers[0].kind, CgroupKind::Container);
    EXPECT_EQ(r.containers[1].kind, CgroupKind::Unknown);
    EXPECT_NE(r.containers[1].note.find("handmade"), std::string::npos) << r.containers[1].note;
}

TEST(CgroupMonitor, MissingQosLevel) {
    TempDir t;
    FakeCgroupFs fs(t / "cg", CgroupVersion::V2);
    // systemd: a BestEffort pod slice directly under kubepods.slice, no QoS slices at all.
    std::string u = pod_uid(7);
    std::replace(u.begin(), u.end(), '-', '_');
    fs.cgroup("kubepods.slice", 0);
    fs.cgroup("kubepods.slice/kubepods-besteffort-pod" + u + ".slice", 10 * MiB);
    fs.cgroup("kubepods.slice/kubepods-pod" + pod_uid(8).replace(8, 1, "_") + ".slice", 5 * MiB);
    CgroupMonitor m;
    CgroupMonitor::Settings s;
    s.cgroup_root = t / "cg";
    ASSERT_TRUE(m.configure(s));
    m.refresh(std::chrono::seconds(1));
    auto r = m.ranked();
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0].pod_uid, pod_uid(7));
    EXPECT_EQ(r[0].qos, QosClass::BestEffort);
    EXPECT_EQ(r[1].pod_uid, pod_uid(8));
    EXPECT_EQ(r[1].qos, QosClass::Guaranteed);
    EXPECT_TRUE(m.unclassified().empty());
}

TEST(CgroupMonitor, ContainerNameFallsBackToThePodsOnlyLogDirectory) {
    TempDir t;
    FakeCgroupFs fs(t / "cg", CgroupVersion::V2);
    FakePodLogs logs(t / "log");
    fs.cgroup("kubepods", 0);
    fs.cgroup("kubepods/pod" + pod_uid(1), 50 * MiB);
    fs.cgroup("kubepods/pod" + pod_uid(1) + "/" + container_id(1), 40 * MiB);
    logs.pod("ns", "single", pod_uid(1));
    logs.container("ns", "single", pod_uid(1), "only", container_id(1), /*link=*/false);
    fs.cgroup("kubepods/pod" + pod_uid(2), 20 * MiB);
    fs.cgroup("kubepods/pod" + pod_uid(2) + "/" + container_id(2), 10 * MiB);
    fs.cgroup("kubepods/pod" + pod_uid(2) + "/" + container_id(3), 5 * MiB);
    logs.pod("ns", "double", pod_uid(2));
    logs.container("ns", "double", pod_uid(2), "a", container_id(2), false);
    logs.container("ns", "double", pod_uid(2), "b", container_id(3), false);
    CgroupMonitor m;
    CgroupMonitor::Settings s;
    s.cgroup_root = t / "cg";
    s.pod_logs_dir = logs.pods_dir();
    ASSERT_TRUE(m.configure(s));
    m.refresh(std::chrono::seconds(1));
    auto r = m.report(5);
    ASSERT_EQ(r.containers.size(), 1u);
    EXPECT_EQ(r.containers[0].container_name, "only");
    EXPECT_NE(r.containers[0].note.find("only log directory"), std::string::npos);
    // Two containers, no links: ambiguous, so no names (and a note says why).
    auto c2 = m.containers(r.top[1]);
    ASSERT_EQ(c2.size(), 2u);
    for (const auto& c : c2) {
        EXPECT_TRUE(c.container_name.empty());
        EXPECT_FALSE(c.note.empty());
    }
}

TEST(CgroupMonitor, TopLevelCgroupsWithoutKubepods) {
    TempDir t;
    FakeCgroupFs fs(t / "cg", CgroupVersion::V2);
    fs.cgroup("init.scope", 5 * MiB);
    fs.cgroup("system.slice", 700 * MiB);
    fs.cgroup("system.slice/sshd.service", 10 * MiB);
    fs.cgroup("system.slice/postgresql.service", 600 * MiB, 400 * MiB);  // mostly cache: 200 MiB
    fs.cgroup("system.slice/java-app.service", 300 * MiB, 10 * MiB);     // 290 MiB
    fs.cgroup("user.slice", 100 * MiB);
    fs.cgroup("user.slice/user-1000.slice", 100 * MiB, 20 * MiB);
    fs.cgroup("machine.slice", 0);  // an empty slice is ranked itself
    CgroupMonitor m;
    CgroupMonitor::Settings s;
    s.cgroup_root = t / "cg";
    ASSERT_TRUE(m.configure(s));
    EXPECT_FALSE(m.kubernetes());
    m.refresh(std::chrono::seconds(1));
    auto r = m.report(5);
    ASSERT_TRUE(r.valid);
    EXPECT_FALSE(r.kubernetes);
    ASSERT_EQ(r.ranked, 6u);
    EXPECT_EQ(r.top[0].path, "/system.slice/java-app.service");
    EXPECT_EQ(r.top[0].kind, CgroupKind::TopLevel);
    EXPECT_EQ(r.top[1].path, "/system.slice/postgresql.service");
    EXPECT_EQ(r.top[2].path, "/user.slice/user-1000.slice");
    EXPECT_TRUE(r.containers.empty());

    // kubelet starts later: kubepods is found at the next structure refresh.
    fs.cgroup("kubepods", 0);
    fs.cgroup("kubepods/pod" + pod_uid(1), 1 * MiB);
    m.refresh(std::chrono::seconds(1));
    EXPECT_TRUE(m.kubernetes());
    auto k = m.ranked();
    ASSERT_EQ(k.size(), 1u);
    EXPECT_EQ(k[0].pod_uid, pod_uid(1));
}

TEST(CgroupMonitor, StructureChangesAreSeenWithoutWaitingForTheTimer) {
    TempDir t;
    FakeCgroupFs fs(t / "cg", CgroupVersion::V1);
    fs.cgroup("kubepods", 0);
    fs.cgroup("kubepods/besteffort", 0);
    fs.cgroup("kubepods/besteffort/pod" + pod_uid(1), 10 * MiB);
    fs.cgroup("kubepods/besteffort/pod" + pod_uid(2), 20 * MiB);
    CgroupMonitor m;
    CgroupMonitor::Settings s;
    s.cgroup_root = t / "cg";
    s.structure_interval = std::chrono::hours(1);
    ASSERT_TRUE(m.configure(s));
    EXPECT_TRUE(m.refresh(std::chrono::seconds(1)).restructured);
    EXPECT_FALSE(
        m.refresh(std::chrono::seconds(1)).restructured);  // nothing changed: no re-listing
    fs.cgroup("kubepods/besteffort/pod" + pod_uid(3), 30 * MiB);
    auto st = m.refresh(std::chrono::seconds(1));
    EXPECT_TRUE(st.restructured);
    auto r = m.ranked();
    ASSERT_EQ(r.size(), 3u);
    EXPECT_EQ(r[0].pod_uid, pod_uid(3));
    removeTree(fs.memory_root() + "/kubepods/besteffort/pod" + pod_uid(3));
    EXPECT_TRUE(m.refresh(std::chrono::seconds(1)).restructured);
    r = m.ranked();
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0].pod_uid, pod_uid(2));
    // A new usage value is read from the kept fds.
    fs.set_usage("kubepods/besteffort/pod" + pod_uid(1), 90 * MiB);
    m.refresh(std::chrono::seconds(1));
    EXPECT_EQ(m.ranked()[0].pod_uid, pod_uid(1));
}

TEST(CgroupMonitor, AllocatableCheck) {
    for (auto v : {CgroupVersion::V1, CgroupVersion::V2}) {
        TempDir t;
        FakeCgroupFs fs(t / "cg", v);
        fs.cgroup("kubepods", 0, 0, 0);  // no limit
        CgroupMonitor m;
        CgroupMonitor::Settings s;
        s.cgroup_root = t / "cg";
        ASSERT_TRUE(m.configure(s));
        auto a = m.allocatable();
        EXPECT_TRUE(a.kubernetes);
        EXPECT_TRUE(a.limit_known);
        EXPECT_FALSE(a.limit.has_value());
        fs.cgroup("kubepods", 0, 0, 7 * 1024 * MiB);
        a = m.allocatable();
        ASSERT_TRUE(a.limit.has_value());
        EXPECT_EQ(*a.limit, 7 * 1024 * MiB);
    }
    TempDir t;
    FakeCgroupFs fs(t / "cg", CgroupVersion::V2);
    CgroupMonitor m;
    CgroupMonitor::Settings s;
    s.cgroup_root = t / "cg";
    ASSERT_TRUE(m.configure(s));
    EXPECT_FALSE(m.allocatable().kubernetes);
}

TEST(CgroupMonitor, ExplicitKubepodsCgroup) {
    TempDir t;
    FakeCgroupFs fs(t / "cg", CgroupVersion::V2);
    fs.cgroup("custom/kubepods", 0);
    fs.cgroup("custom/kubepods/pod" + pod_uid(1), 1 * MiB);
    CgroupMonitor m;
    CgroupMonitor::Settings s;
    s.cgroup_root = t / "cg";
    s.kubepods_cgroup = "custom/kubepods";
    ASSERT_TRUE(m.configure(s));
    ASSERT_TRUE(m.kubernetes());
    EXPECT_EQ(m.kubepods_path(), "/custom/kubepods");
    m.refresh(std::chrono::seconds(1));
    ASSERT_EQ(m.ranked().size(), 1u);
}

TEST(CgroupMonitor, NoMemoryControllerIsAClearError) {
    TempDir t;
    CgroupMonitor m;
    // Never configured: no error yet, and the report says so.
    EXPECT_FALSE(m.error());
    ASSERT_TRUE(m.report(5).error);
    EXPECT_EQ(m.report(5).error->message, "not configured");
    EXPECT_FALSE(m.allocatable().error);
    CgroupMonitor::Settings s;
    s.cgroup_root = t.path();
    auto st = m.configure(s);
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().message.find(t.path()), std::string::npos);
    EXPECT_FALSE(m.configured());
    // The failed configure's error, everywhere the monitor is asked.
    ASSERT_TRUE(m.error());
    EXPECT_EQ(m.error()->message, st.error().message);
    auto r = m.report(5);
    EXPECT_FALSE(r.valid);
    ASSERT_TRUE(r.error);
    EXPECT_EQ(r.error->message, st.error().message);
    const auto a = m.allocatable();
    EXPECT_FALSE(a.kubernetes);
    ASSERT_TRUE(a.error);
    EXPECT_EQ(a.error->message, st.error().message);
    EXPECT_EQ(m.refresh(std::chrono::seconds(1)).read, 0u);
}

TEST(CgroupMonitor, AnUnreadableKubepodsLimitIsNamed) {
    TempDir t;
    FakeCgroupFs fs(t / "cg", CgroupVersion::V2);
    fs.cgroup("kubepods", 0, 0, 7 * 1024 * MiB);
    CgroupMonitor m;
    CgroupMonitor::Settings s;
    s.cgroup_root = t / "cg";
    ASSERT_TRUE(m.configure(s));
    EXPECT_FALSE(m.error());
    t.write("cg/kubepods/memory.max", "garbage\n");
    const auto a = m.allocatable();
    EXPECT_TRUE(a.kubernetes);
    EXPECT_FALSE(a.limit_known);
    ASSERT_TRUE(a.error);
    EXPECT_EQ(a.error->message, "cannot read memory.max of /kubepods");
}

TEST(CgroupMonitor, FixtureNode110PodsBy4Containers) {
    TempDir t;
    FakeCgroupFs fs(t / "cg", CgroupVersion::V1);
    FakePodLogs logs(t / "log");
    KubeLayout L{CgroupDriver::Systemd, Runtime::Containerd};
    fs.cgroup(L.kubepods(), 0);
    const QosClass qos[] = {QosClass::Guaranteed, QosClass::Burstable, QosClass::BestEffort};
    for (QosClass q : qos)
        if (q != QosClass::Guaranteed) fs.cgroup(L.qos_dir(q), 0);
    for (unsigned i = 0; i < 110; ++i) {
        QosClass q = qos[i % 3];
        uint64_t ws = (i == 77 ? 3000 : 10 + (i * 37) % 500) * MiB;
        uint64_t cache = (i == 5 ? 8000 : 50) * MiB;  // pod 5: the page-cache decoy
        const std::string dir = L.pod_dir(q, pod_uid(i));
        fs.cgroup(dir, ws + cache, cache);
        logs.pod("ns" + std::to_string(i % 7), "pod-" + std::to_string(i), pod_uid(i));
        for (unsigned c = 0; c < 4; ++c) {
            unsigned id = i * 4 + c;
            fs.cgroup(dir + "/" + L.container_name(container_id(id)), ws / 4 + c * MiB, 0);
            logs.container("ns" + std::to_string(i % 7), "pod-" + std::to_string(i), pod_uid(i),
                           "c" + std::to_string(c), container_id(id));
        }
    }
    CgroupMonitor m;
    CgroupMonitor::Settings s;
    s.cgroup_root = t / "cg";
    s.pod_logs_dir = logs.pods_dir();
    ASSERT_TRUE(m.configure(s));
    auto st = m.refresh(std::chrono::seconds(5));
    EXPECT_EQ(st.read, 110u);
    auto r = m.report(5);
    ASSERT_EQ(r.ranked, 110u);
    EXPECT_EQ(r.top[0].pod_name, "pod-77");
    EXPECT_EQ(r.top[0].pod_namespace, "ns0");
    ASSERT_EQ(r.containers.size(), 4u);
    EXPECT_EQ(r.containers[0].container_name, "c3");
    for (const auto& p : r.top) EXPECT_NE(p.pod_name, "pod-5");
}
