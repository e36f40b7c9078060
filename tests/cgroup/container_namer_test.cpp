// The one container-naming rule, as the ranking and the kernel OOM victim
// report see it: both must give a container the same name. The victim report
// used to name any container without a log link after the pod's only log
// directory, even the sandbox or a second, unlogged container. And the one
// label every message gives a container.
#include <gtest/gtest.h>

#include "cgroup/cgroup_monitor.hpp"
#include "cgroup/heaviest_format.hpp"
#include "cgroup/kmsg.hpp"
#include "cgroup/oom_reporter.hpp"
#include "fixture.hpp"

using namespace oomguard;
using namespace oomguard::test;

namespace {

struct Rig {
    TempDir t;
    FakeCgroupFs fs{t / "cg", CgroupVersion::V2};
    FakePodLogs logs{t / "log"};
    FakeProc proc{t / "proc"};
    CgroupMonitor m;

    Rig() { fs.cgroup("kubepods", 0); }
    std::string pod_dir(unsigned n) const { return "kubepods/pod" + pod_uid(n); }
    void container(unsigned pod, unsigned id, uint64_t mib, const std::string& comm) {
        const std::string d = pod_dir(pod) + "/" + container_id(id);
        fs.cgroup(d, mib * MiB);
        fs.procs(d, std::to_string(3000 + id) + "\n");
        proc.comm(static_cast<int>(3000 + id), comm);
    }
    void configure() {
        CgroupMonitor::Settings s;
        s.cgroup_root = t / "cg";
        s.proc_root = proc.dir();
        s.pod_logs_dir = logs.pods_dir();
        ASSERT_TRUE(m.configure(s));
        m.refresh(std::chrono::seconds(1));
    }
    KernelOomEvent victim(unsigned pod, unsigned id) const {
        KernelOomEvent e;
        e.pid = 3000 + id;
        e.task = "x";
        e.task_memcg = "/" + pod_dir(pod) + "/" + container_id(id);
        e.memcg_oom = true;
        return e;
    }
    std::string ranked_name(unsigned pod, unsigned id) {
        auto r = m.report(5);
        for (const auto& p : r.top)
            if (p.pod_uid == pod_uid(pod))
                for (const auto& c : m.containers(p))
                    if (c.container_id == container_id(id)) return c.container_name;
        return "<not ranked>";
    }
};

}  // namespace

// Pod "web": container "app" (logged, linked) and a second container without
// logs (its log link and directory missing). Its pod logs one container, but
// the unlogged one is not that container.
TEST(ContainerNamer, VictimInAnUnloggedSecondContainerIsNotNamedAfterTheOnlyLogDirectory) {
    Rig r;
    r.fs.cgroup(r.pod_dir(1), 300 * MiB);
    r.container(1, 10, 1, "pause");
    r.container(1, 11, 200, "app");
    r.container(1, 12, 90, "sidecar");
    r.logs.pod("ns", "web", pod_uid(1));
    r.logs.container("ns", "web", pod_uid(1), "app", container_id(11));
    r.configure();
    EXPECT_EQ(r.ranked_name(1, 11), "app");
    EXPECT_EQ(r.ranked_name(1, 12), "");
    CgroupRef v = attribute_oom_kill(r.victim(1, 12), r.m).cgroup;
    EXPECT_EQ(v.pod_name, "web");
    EXPECT_EQ(v.container_name, "") << "the victim report and the ranking disagree";
    EXPECT_EQ(attribute_oom_kill(r.victim(1, 11), r.m).cgroup.container_name, "app");
}

// A pod whose only logged container has no link: the pause sandbox is never
// named after that log directory, the real container is.
TEST(ContainerNamer, SandboxVictimIsNotNamedAfterThePodsOnlyContainer) {
    Rig r;
    r.fs.cgroup(r.pod_dir(2), 100 * MiB);
    r.container(2, 20, 1, "pause");
    r.container(2, 21, 80, "worker");
    r.logs.pod("ns", "job", pod_uid(2));
    r.logs.container("ns", "job", pod_uid(2), "worker", container_id(21), /*link=*/false);
    r.configure();
    EXPECT_EQ(r.ranked_name(2, 21), "worker");
    EXPECT_EQ(attribute_oom_kill(r.victim(2, 21), r.m).cgroup.container_name, "worker");
    EXPECT_EQ(attribute_oom_kill(r.victim(2, 20), r.m).cgroup.container_name, "");
}

// The victim's cgroup is often gone by the time the report is read: it still
// counts as the pod's one unnamed container, and gets the only log directory.
TEST(ContainerNamer, VanishedVictimStillGetsThePodsOnlyLogDirectory) {
    Rig r;
    r.fs.cgroup(r.pod_dir(3), 100 * MiB);
    r.container(3, 30, 1, "pause");
    r.logs.pod("ns", "gone", pod_uid(3));
    r.logs.container("ns", "gone", pod_uid(3), "eater", container_id(31), /*link=*/false);
    r.configure();
    CgroupRef v = attribute_oom_kill(r.victim(3, 31), r.m).cgroup;
    EXPECT_EQ(v.pod_name, "gone");
    EXPECT_EQ(v.container_name, "eater");
}

// One label for a container in every message: its name, else the id's first
// 12 characters, else its cgroup's last path component. The kill-cgroup
// target and the dying-container skip used the id even for a named
// container, and a victim without a name or id got no label at all.
TEST(ContainerLabel, NameElseShortIdElsePathTail) {
    const std::string id = container_id(7);
    EXPECT_EQ(container_label("app", id, "/kubepods/x/" + id), "app");
    EXPECT_EQ(container_label("", id, "/kubepods/x/" + id), id.substr(0, 12));
    EXPECT_EQ(container_label("", "", "/system.slice/cron.service"), "cron.service");
    EXPECT_EQ(container_label("", "", "cron.service"), "cron.service");
    EXPECT_EQ(container_label("", "", ""), "");
    CgroupRef ref;
    ref.path = "/kubepods/besteffort/pod" + pod_uid(1);
    EXPECT_EQ(ref.container(), "") << "a pod's path names no container";
    ref.container_id = id;
    EXPECT_EQ(ref.container(), id.substr(0, 12));
    ref.container_name = "app";
    EXPECT_EQ(ref.container(), "app");
}

// The trigger's heaviest-container line and the kernel OOM victim report show
// an unnamed container by the same label.
TEST(ContainerLabel, TheHeaviestLineAndTheVictimReportAgreeOnAnUnnamedContainer) {
    Rig r;
    r.fs.cgroup(r.pod_dir(4), 500 * MiB);
    r.container(4, 40, 1, "pause");
    r.container(4, 41, 400, "eater");
    r.configure();
    const std::string label = container_id(41).substr(0, 12);
    const std::string line = heaviest_summary(r.m.report(5));
    EXPECT_NE(line.find(", container " + label + " "), std::string::npos) << line;
    EXPECT_EQ(attribute_oom_kill(r.victim(4, 41), r.m).cgroup.container(), label);
}
