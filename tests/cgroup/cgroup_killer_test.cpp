// Victim choice of the kill-cgroup action on fixture trees: QoS order,
// excluded namespaces, Guaranteed only when allowed, nothing outside kubepods.
#include "cgroup/cgroup_killer.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "fixture.hpp"
#include "tick_clock.hpp"

using namespace oomguard;
using namespace oomguard::test;

namespace {

// The outcome's error message, or "(delivered)": for assertions, never a null read.
std::string why(const KillOutcome& o) { return o.error ? o.error->message : "(delivered)"; }

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
        // One task per container, at an ordinary oom_score_adj.
        task(dir + "/" + container_id(n), 1000 + n, 0);
        if (with_logs)
            logs.container(ns, "pod" + std::to_string(n), pod_uid(n), "main", container_id(n));
    }
    // A task of a container cgroup with its /proc/<pid>/oom_score_adj (and comm).
    void task(const std::string& cgroup, int pid, int oom_score_adj, const std::string& comm = "") {
        fs.procs(cgroup, std::to_string(pid) + "\n");
        makeFile(tmp / ("proc/" + std::to_string(pid) + "/oom_score_adj"),
                 std::to_string(oom_score_adj) + "\n");
        if (!comm.empty()) makeFile(tmp / ("proc/" + std::to_string(pid) + "/comm"), comm + "\n");
    }
    VictimChoice choose(KillPolicy p = {}) {
        CgroupMonitor::Settings s;
        s.cgroup_root = tmp / "cg";
        s.proc_root = tmp / "proc";
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
    auto all = n.choose(KillPolicy{{}, false, {}});
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
    auto g = n.choose(KillPolicy{{"kube-system"}, true, {}});
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
    EXPECT_FALSE(o.ok());
    EXPECT_EQ(why(o), "no kubepods cgroup");
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
        EXPECT_FALSE(o.ok()) << path;
        EXPECT_NE(why(o).find("refusing"), std::string::npos) << path << ": " << why(o);
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

// Issue 10, defect 7: kubelet gives critical pods (CNI, CSI, device plugins, in
// any namespace) oom_score_adj -997; kill-cgroup must never pick them.
TEST(VictimChoice, NeverAContainerWithACriticalTask) {
    Node n;
    n.pod(QosClass::BestEffort, 1, "kube-flannel", 900);
    const std::string c1 = n.L.pod_dir(QosClass::BestEffort, pod_uid(1)) + "/" + container_id(1);
    n.fs.procs(c1, "1101\n1102\n");  // an ordinary task and a critical one
    n.task(c1, 1101, 1000);
    makeFile(n.tmp / "proc/1102/oom_score_adj", "-997\n");
    n.fs.procs(c1, "1101\n1102\n");
    n.pod(QosClass::BestEffort, 2, "default", 100);
    auto v = n.choose(KillPolicy{{}, false, {}});
    ASSERT_TRUE(v.found) << v.why_none;
    EXPECT_EQ(v.pod.pod_uid, pod_uid(2)) << "killed a container with a task at oom_score_adj -997";
    std::string all;
    for (const auto& s : v.skipped) all += s + "\n";
    EXPECT_NE(all.find("oom_score_adj -997"), std::string::npos) << all;
}

// Tasks whose oom_score_adj cannot be read (another pid namespace, /proc not
// mounted) might be critical: never guessed.
TEST(VictimChoice, UnknownOomScoreAdjIsNotGuessed) {
    Node n;
    n.pod(QosClass::BestEffort, 1, "default", 900);
    const std::string c1 = n.L.pod_dir(QosClass::BestEffort, pod_uid(1)) + "/" + container_id(1);
    n.fs.procs(c1, "0\n");  // what a pod without hostPID sees
    n.pod(QosClass::BestEffort, 2, "default", 100);
    auto v = n.choose();
    ASSERT_TRUE(v.found) << v.why_none;
    EXPECT_EQ(v.pod.pod_uid, pod_uid(2));
}

// The pause sandbox is not a container to kill, also when /proc/<pid>/comm
// cannot be read: its lone task runs at the runtime's oom_score_adj -998.
TEST(VictimChoice, PauseSandboxRecognisedWithoutComm) {
    Node n;
    n.pod(QosClass::BestEffort, 1, "default", 100);
    const std::string pod = n.L.pod_dir(QosClass::BestEffort, pod_uid(1));
    const std::string sandbox = pod + "/" + container_id(50);
    n.fs.cgroup(sandbox, 500 * MiB);  // heavier than the real container
    n.task(sandbox, 2050, -998);      // no comm file
    auto v = n.choose();
    ASSERT_TRUE(v.found) << v.why_none;
    EXPECT_EQ(v.container.container_id, container_id(1)) << "picked the pause sandbox";
    bool saw_sandbox = false;
    for (const auto& c : n.m.containers(v.pod))
        if (c.container_id == container_id(50)) saw_sandbox = c.kind == CgroupKind::Sandbox;
    EXPECT_TRUE(saw_sandbox);
}

// Issue 10, defect 5: a successful cgroup.kill write is the action, even while
// the dying tasks are still listed (multi-GiB processes take a while to free).
TEST(KillCgroup, CgroupKillWriteIsTheActionWhileTasksLinger) {
    TempDir t;
    makeDir(t / "victim");
    makeFile(t / "victim/cgroup.kill", "");  // writes succeed, nothing dies
    pid_t child = ::fork();
    if (child == 0) {
        for (;;) ::pause();
    }
    ASSERT_GT(child, 0);
    makeFile(t / "victim/cgroup.procs", std::to_string(child) + "\n");
    int dir = ::open((t / "victim").c_str(), O_RDONLY | O_DIRECTORY);
    const auto t0 = std::chrono::steady_clock::now();
    // The injected clock times the kill: two readings, no wait loop on it.
    TickClock tick(std::chrono::microseconds(1));
    KillOutcome o = kill_cgroup_at(dir, CgroupVersion::V2, "victim", tick);
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(o.elapsed, std::chrono::microseconds(1));
    EXPECT_EQ(tick.readings(), 2);
    ::close(dir);
    int st = 0;
    EXPECT_EQ(::waitpid(child, &st, WNOHANG), 0) << "the fake cgroup.kill cannot kill";
    ::kill(child, SIGKILL);
    ::waitpid(child, &st, 0);
    EXPECT_TRUE(o.ok()) << why(o);
    EXPECT_EQ(o.method, "cgroup.kill");
    EXPECT_EQ(readFile(t / "victim/cgroup.kill"), "1");
    EXPECT_LT(took, std::chrono::milliseconds(100)) << "waited for the cgroup to empty";
}

// Issue 10, defect 6: tasks that show only as pid 0 (another pid namespace) and
// a cgroup.kill that cannot be written: nothing was killed, so it is a failure.
TEST(KillCgroup, SignallingNothingIsAFailure) {
    TempDir t;
    makeDir(t / "v1");
    makeFile(t / "v1/cgroup.procs", "0\n0\n");
    int dir = ::open((t / "v1").c_str(), O_RDONLY | O_DIRECTORY);
    KillOutcome o = kill_cgroup_at(dir, CgroupVersion::V1, "v1");
    ::close(dir);
    EXPECT_FALSE(o.ok());
    EXPECT_EQ(why(o),
              "v1/cgroup.procs lists 2 task(s) only as pid 0: they are in another pid namespace "
              "(the daemon needs the host's, hostPID: true), nothing was signalled");

    makeDir(t / "v2");
    makeDir(t / "v2/cgroup.kill");  // open(O_WRONLY) fails: EISDIR
    makeFile(t / "v2/cgroup.procs", "0\n");
    dir = ::open((t / "v2").c_str(), O_RDONLY | O_DIRECTORY);
    o = kill_cgroup_at(dir, CgroupVersion::V2, "v2");
    ::close(dir);
    EXPECT_FALSE(o.ok());
    EXPECT_EQ(why(o),
              "v2/cgroup.kill: Is a directory; v2/cgroup.procs lists 1 task(s) only as pid 0: they "
              "are in another pid namespace (the daemon needs the host's, hostPID: true), nothing "
              "was signalled");
    ASSERT_TRUE(o.error);
    EXPECT_EQ(o.error->code, EISDIR) << "the cgroup.kill errno";

    makeDir(t / "empty");
    makeFile(t / "empty/cgroup.procs", "");
    dir = ::open((t / "empty").c_str(), O_RDONLY | O_DIRECTORY);
    o = kill_cgroup_at(dir, CgroupVersion::V1, "empty");
    ::close(dir);
    EXPECT_FALSE(o.ok());
    EXPECT_EQ(why(o), "no task in empty to signal");
    EXPECT_EQ(o.method, "SIGKILL to cgroup.procs") << "a failure still says what was tried";

    // A container cgroup that is gone: the monitor's path and the errno.
    Node n;
    n.pod(QosClass::BestEffort, 1, "default", 10);
    n.choose();
    CgroupInfo gone;
    gone.path = "/" + n.L.pod_dir(QosClass::BestEffort, pod_uid(1)) + "/" + container_id(9);
    gone.kind = CgroupKind::Container;
    o = kill_container_cgroup(n.m, gone);
    ASSERT_FALSE(o.ok());
    EXPECT_EQ(why(o), gone.path + ": No such file or directory");
    EXPECT_EQ(o.error->code, ENOENT);
}
