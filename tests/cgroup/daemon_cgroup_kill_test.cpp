// The real oomguard binary's kill-cgroup action: who is eligible, what the entry
// names, repeats, a cgroup that does not empty at once or cannot be signalled,
// the sysrq fallback; one test on real v1 memory cgroups (root). ~5 s.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>

#include "daemon_cgroup_rig.hpp"

using namespace oomguard;
using namespace oomguard::test;
using namespace oomguard::test::daemon_cgroup_rig;

TEST(DaemonCgroups, KillCgroupFallsBackToSysrqWhenNothingIsEligible) {
    FakeNode n(CgroupVersion::V2, "kill-cgroup");
    n.fs.cgroup("kubepods", 0, 0, 6ull << 30);  // allocatable enforced
    n.pod("besteffort", 1, "kube-system", "coredns", 900 * MiB);
    n.pod("", 2, "default", "db", 500 * MiB);  // Guaranteed
    DaemonProcess& d = n.start(false);
    std::string t = d.wait_event("trigger", "OOMGUARD_ACTION=");
    ASSERT_FALSE(t.empty()) << d.log();
    EXPECT_NE(t.find("no eligible container"), std::string::npos) << t;
    EXPECT_NE(t.find("kube-system is excluded"), std::string::npos) << t;
    EXPECT_NE(t.find("Guaranteed (kill_guaranteed = false)"), std::string::npos) << t;
    EXPECT_NE(
        t.find("falling back to sysrq: asked the kernel OOM killer to kill one task (sysrq f"),
        std::string::npos)
        << t;
    EXPECT_EQ(field(t, "OOMGUARD_ACTION"), "sysrq");
    EXPECT_EQ(d.stop(), 0);
    EXPECT_EQ(readFile(n.paths.trigger), "f");
    EXPECT_NE(d.log().find("node allocatable is enforced: /kubepods is limited to 6.0 GiB"),
              std::string::npos)
        << d.log();
}

TEST(DaemonCgroups, RealKillCgroupKillsOnlyTheChosenContainer) {
    REQUIRE_REAL_CGROUPS();
    TempDir tmp;
    RealCgroupTree t;
    FakePodLogs logs(tmp / "log");
    FakeProc proc(tmp / "proc");
    proc.meminfo(8ull << 30, 1ull << 30);
    // Guaranteed (heaviest), kube-system BestEffort (heavy), Burstable, and the
    // expected victim: the heavier container of the default BestEffort pod.
    struct P {
        std::string qos, ns, name;
        unsigned n;
        std::vector<std::pair<unsigned, uint64_t>> containers;  // id, MiB
    };
    const std::vector<P> pods = {
        {"", "default", "db", 1, {{11, 40}}},
        {"besteffort", "kube-system", "coredns", 2, {{21, 30}}},
        {"burstable", "default", "api", 3, {{31, 20}}},
        {"besteffort", "default", "batch", 4, {{41, 12}, {42, 3}}},
    };
    std::map<unsigned, pid_t> pid_of;
    for (const auto& p : pods) {
        logs.pod(p.ns, p.name, pod_uid(p.n));
        for (auto [id, mib] : p.containers) {
            t.make(ctr_path(p.qos, p.n, id));
            logs.container(p.ns, p.name, pod_uid(p.n), "c" + std::to_string(id), container_id(id));
            pid_of[id] = t.spawn(ctr_path(p.qos, p.n, id), mib * MiB);
            ASSERT_GT(pid_of[id], 0);
            // The fake /proc answers for the real tasks: ordinary pods.
            makeFile(proc.dir() + "/" + std::to_string(pid_of[id]) + "/oom_score_adj", "1000\n");
        }
    }
    pid_t second =
        t.spawn(ctr_path("besteffort", 4, 41), 1 * MiB);  // a second process of the victim
    ASSERT_GT(second, 0);
    makeFile(proc.dir() + "/" + std::to_string(second) + "/oom_score_adj", "1000\n");
    NodePaths s{t.parent(),   proc.dir(),      logs.pods_dir(),
                tmp / "kmsg", tmp / "trigger", "kill-cgroup"};
    makeFile(s.kmsg, "");
    makeFile(s.trigger, "");
    DaemonProcess d(args(write_config(tmp, s), false));
    std::string trig = d.wait_event("trigger", "OOMGUARD_ACTION=");
    ASSERT_FALSE(trig.empty()) << d.log();
    EXPECT_EQ(field(trig, "OOMGUARD_ACTION"), "kill-cgroup") << trig;
    EXPECT_NE(trig.find("killed container c41 of pod default/batch (BestEffort"), std::string::npos)
        << trig;
    for (pid_t p : {pid_of[41], second}) {
        int st = 0;
        ASSERT_TRUE(t.reap(p, &st)) << "victim process " << p << " still running";
        EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    }
    for (unsigned id : {11u, 21u, 31u, 42u})
        EXPECT_TRUE(t.alive(pid_of[id])) << "container " << id << " was hit";
    EXPECT_EQ(d.stop(), 0);
    EXPECT_EQ(readFile(s.trigger), "") << "kill-cgroup also wrote sysrq";
}

TEST(DaemonCgroups, KillCgroupDryRunSaysWhatItWouldKill) {
    FakeNode n(CgroupVersion::V1, "kill-cgroup");
    KubeLayout L{CgroupDriver::Systemd, Runtime::Crio};
    n.fs.cgroup(L.kubepods(), 0);
    const std::string pod = L.pod_dir(QosClass::BestEffort, pod_uid(1));
    n.fs.cgroup(pod, 300 * MiB);
    n.fs.cgroup(pod + "/" + L.container_name(container_id(1)), 250 * MiB);
    n.task(pod + "/" + L.container_name(container_id(1)), 4242);
    n.fs.cgroup(pod + "/" + L.conmon_name(container_id(1)),
                400 * MiB);  // heavier, but not a container
    n.logs.pod("default", "worker", pod_uid(1));
    n.logs.container("default", "worker", pod_uid(1), "main", container_id(1));
    DaemonProcess& d = n.start(true);
    std::string t = d.wait_event("trigger", "OOMGUARD_ACTION=");
    ASSERT_FALSE(t.empty()) << d.log();
    EXPECT_NE(t.find("dry-run: would kill container main of pod default/worker (BestEffort"),
              std::string::npos)
        << t;
    EXPECT_NE(t.find("cgroup /" + pod + "/" + L.container_name(container_id(1)) + ")"),
              std::string::npos)
        << t;
    // Red-team finding 5: nothing was killed; the entry said ACTION=kill-cgroup.
    EXPECT_EQ(field(t, "OOMGUARD_ACTION"), "dry-run") << t;
    EXPECT_EQ(field(t, "OOMGUARD_MODE"), "kill-cgroup") << t;
    EXPECT_EQ(d.stop(), 0);
    EXPECT_EQ(readFile(n.paths.trigger), "");
}

// Red-team finding 1: the victim goes by QoS (BestEffort first), the heaviest
// pod may be another one. The old entry said "would kill ... pod3 (BestEffort)"
// but carried OOMGUARD_POD_NAME=pod2 (the heaviest, Burstable).
TEST(DaemonCgroups, KillCgroupEntryFieldsNameTheVictimNotTheHeaviest) {
    FakeNode n(CgroupVersion::V2, "kill-cgroup");
    KubeLayout L{CgroupDriver::Systemd, Runtime::Containerd};
    n.fs.cgroup(L.kubepods(), 0);
    n.fs.cgroup(L.qos_dir(QosClass::Burstable), 0);
    n.fs.cgroup(L.qos_dir(QosClass::BestEffort), 0);
    const std::string heavy = L.pod_dir(QosClass::Burstable, pod_uid(2));
    const std::string light = L.pod_dir(QosClass::BestEffort, pod_uid(3));
    n.fs.cgroup(heavy, 900 * MiB);
    n.fs.cgroup(heavy + "/" + L.container_name(container_id(2)), 850 * MiB);
    n.task(heavy + "/" + L.container_name(container_id(2)), 4202, 900);
    n.fs.cgroup(light, 300 * MiB);
    n.fs.cgroup(light + "/" + L.container_name(container_id(3)), 250 * MiB);
    n.task(light + "/" + L.container_name(container_id(3)), 4303);
    n.logs.pod("default", "pod2", pod_uid(2));
    n.logs.container("default", "pod2", pod_uid(2), "big", container_id(2));
    n.logs.pod("default", "pod3", pod_uid(3));
    n.logs.container("default", "pod3", pod_uid(3), "small", container_id(3));
    DaemonProcess& d = n.start(true);
    std::string t = d.wait_event("trigger", "OOMGUARD_ACTION=");
    ASSERT_FALSE(t.empty()) << d.log();
    EXPECT_NE(t.find("would kill container small of pod default/pod3 (BestEffort"),
              std::string::npos)
        << t;
    EXPECT_EQ(field(t, "OOMGUARD_POD_NAME"), "pod3") << t;
    EXPECT_EQ(field(t, "OOMGUARD_QOS"), "BestEffort") << t;
    EXPECT_EQ(field(t, "OOMGUARD_CONTAINER_NAME"), "small") << t;
    EXPECT_EQ(field(t, "OOMGUARD_CGROUP"), "/" + light) << t;
    EXPECT_EQ(field(t, "OOMGUARD_CONTAINER_CGROUP"),
              "/" + light + "/" + L.container_name(container_id(3)))
        << t;
    // The heaviest pod stays in the entry, under its own names.
    EXPECT_EQ(field(t, "OOMGUARD_HEAVIEST_POD_NAME"), "pod2") << t;
    EXPECT_EQ(field(t, "OOMGUARD_HEAVIEST_QOS"), "Burstable") << t;
    EXPECT_EQ(d.stop(), 0);
}

// Red-team finding 2: a repeat in the same episode picked the container it had
// already killed (still listed while dying) and reported a new kill. Now the
// repeat kills the next victim, and with only dying ones left it says so (and
// falls back to sysrq as for any "nothing eligible").
TEST(DaemonCgroups, KillCgroupRepeatSkipsTheContainerStillDying) {
    FakeNode n(CgroupVersion::V2, "kill-cgroup");
    n.fs.cgroup("kubepods", 0);
    for (unsigned i : {1u, 2u}) {
        const std::string name = i == 1 ? "first" : "second";
        const std::string ctr = n.pod("besteffort", i, "default", name, (i == 1 ? 900 : 400) * MiB);
        makeFile(n.fs.root() + "/" + ctr + "/cgroup.kill", "");  // accepts the write, kills nothing
        n.task(ctr, 5000 + i);
        n.logs.container("default", name, pod_uid(i), "main", container_id(i));
    }
    n.paths.repeat_after = "1s";
    DaemonProcess& d = n.start(false);
    std::string t1 = d.wait_event("trigger", "killed container main of pod default/first");
    ASSERT_FALSE(t1.empty()) << d.log();
    // The repeat: the first is still listed (dying), the second is the next victim.
    std::string t2 = d.wait_event("trigger", "still below", std::chrono::seconds(5));
    ASSERT_FALSE(t2.empty()) << d.log();
    EXPECT_NE(t2.find("killed container main of pod default/second"), std::string::npos) << t2;
    EXPECT_EQ(field(t2, "OOMGUARD_POD_NAME"), "second") << t2;
    // Only dying ones left: no new kill is claimed.
    std::string t3 = d.wait_event("trigger", "still dying", std::chrono::seconds(5));
    ASSERT_FALSE(t3.empty()) << d.log();
    EXPECT_EQ(t3.find("killed container"), std::string::npos) << t3;
    EXPECT_NE(t3.find("still below"), std::string::npos) << t3;
    EXPECT_EQ(field(t3, "OOMGUARD_ACTION"), "sysrq") << t3;
    EXPECT_EQ(d.stop(), 0);
    const std::string out = d.log();
    size_t kills = 0;
    for (size_t p = out.find(": killed container"); p != std::string::npos;
         p = out.find(": killed container", p + 1))
        ++kills;
    EXPECT_EQ(kills, 2u) << out;
    EXPECT_EQ(readFile(n.paths.trigger), "f");
}

// Issue 10, defect 5: cgroup.kill written but the cgroup not empty at once
// (dying multi-GiB tasks stay listed while their memory is freed): that is the
// action. The old daemon called it a failure after 500 ms and wrote sysrq too,
// killing a second victim.
TEST(DaemonCgroups, KillCgroupThatDoesNotEmptyAtOnceIsNotFollowedBySysrq) {
    FakeNode n(CgroupVersion::V2, "kill-cgroup");
    n.fs.cgroup("kubepods", 0);
    const std::string ctr = n.pod("besteffort", 1, "default", "hog", 900 * MiB);
    makeFile(n.fs.root() + "/" + ctr + "/cgroup.kill", "");  // accepts the write, kills nothing
    pid_t child = ::fork();
    if (child == 0) {
        for (;;) ::pause();
    }
    ASSERT_GT(child, 0);
    n.task(ctr, child);
    n.logs.container("default", "hog", pod_uid(1), "main", container_id(1));
    DaemonProcess& d = n.start(false);
    std::string t = d.wait_event("trigger", "OOMGUARD_ACTION=");
    ASSERT_FALSE(t.empty()) << d.log();
    EXPECT_NE(t.find("killed container main of pod default/hog"), std::string::npos) << t;
    EXPECT_NE(t.find("via cgroup.kill"), std::string::npos) << t;
    // Well past the old 500 ms bound: still no sysrq, no second action.
    d.wait_entry([](const std::string&) { return false; }, std::chrono::milliseconds(1200));
    EXPECT_EQ(readFile(n.paths.trigger), "") << "sysrq written after a successful cgroup.kill\n"
                                             << d.log();
    EXPECT_EQ(d.log().find("trigger-failed"), std::string::npos) << d.log();
    // The emptying is watched from the loop and logged with what came back.
    n.fs.procs(ctr, "");
    EXPECT_FALSE(
        d.wait_entry(
             [](const std::string& e) { return e.find("is empty after") != std::string::npos; },
             std::chrono::seconds(2))
            .empty())
        << d.log();
    EXPECT_EQ(d.stop(), 0);
    ::kill(child, SIGKILL);
    int st;
    ::waitpid(child, &st, 0);
}

// Issue 10, defect 6: in a pod without hostPID cgroup.procs shows only pid 0 and
// the cgroupfs is read-only: nothing can be signalled. The old daemon counted the
// empty pid list as a kill and did nothing while the node thrashed. Now it is a
// failure that falls back to sysrq, and the start says why kill-cgroup cannot work.
TEST(DaemonCgroups, KillCgroupThatCanSignalNothingFallsBackToSysrq) {
    FakeNode n(CgroupVersion::V1, "kill-cgroup");
    n.fs.cgroup("kubepods", 0);
    const std::string ctr = n.pod("besteffort", 1, "default", "hog", 900 * MiB);
    n.fs.procs(ctr, "0\n0\n");
    n.logs.container("default", "hog", pod_uid(1), "main", container_id(1));
    DaemonProcess& d = n.start(false);
    std::string t = d.wait_event("trigger", "OOMGUARD_ACTION=");
    ASSERT_FALSE(t.empty()) << d.log();
    EXPECT_EQ(field(t, "OOMGUARD_ACTION"), "sysrq") << t;
    EXPECT_NE(t.find("falling back to sysrq"), std::string::npos) << t;
    EXPECT_NE(d.log().find("kill-cgroup cannot kill containers here"), std::string::npos)
        << d.log();
    EXPECT_NE(d.log().find("hostPID"), std::string::npos) << d.log();
    EXPECT_EQ(d.stop(), 0);
    EXPECT_EQ(readFile(n.paths.trigger), "f");
}

// Issue 10, defect 8: with fallback_sysrq = false, "no eligible container" is
// nothing done: a failure in the journal and the metrics, never a trigger.
TEST(DaemonCgroups, KillCgroupNothingDoneIsAFailureInEverySink) {
    FakeNode n(CgroupVersion::V2, "kill-cgroup");
    n.fs.cgroup("kubepods", 0);
    n.pod("besteffort", 1, "kube-system", "coredns", 900 * MiB);
    n.paths.extra_action = "fallback_sysrq = false";
    n.paths.extra = "[metrics]\ntextfile = \"" + (n.tmp / "oomguard.prom") + "\"\n";
    DaemonProcess& d = n.start(false);
    std::string f = d.wait_event("trigger-failed", "nothing done");
    ASSERT_FALSE(f.empty()) << d.log();
    EXPECT_NE(f.find("no eligible container"), std::string::npos) << f;
    EXPECT_EQ(field(f, "OOMGUARD_OUTCOME"), "failed") << f;
    d.wait_entry([](const std::string&) { return false; }, std::chrono::milliseconds(300));
    EXPECT_EQ(d.log().find(">trigger: "), std::string::npos)
        << "'nothing done' logged as a trigger\n"
        << d.log();
    const std::string prom = readFile(n.tmp / "oomguard.prom");
    EXPECT_NE(prom.find("oomguard_triggers_total 0\n"), std::string::npos) << prom;
    EXPECT_EQ(prom.find("oomguard_trigger_failures_total 0\n"), std::string::npos) << prom;
    EXPECT_EQ(d.stop(), 0);
    EXPECT_EQ(readFile(n.paths.trigger), "");
}
