// The real oomguard binary with cgroup targeting: a fixture node of 110 pods x 4
// containers with a fake /proc whose MemAvailable is below the threshold; real
// v1 memory cgroups (heaviest pod named, a kernel memcg OOM kill reported, the
// kill-cgroup action). The trigger is always a file of the test's own.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <thread>

#include "fixture.hpp"
#include "real_cgroup.hpp"

using namespace oomguard;
using namespace oomguard::test;

namespace {

struct NodePaths {
    NodePaths(std::string cg, std::string p, std::string logs, std::string k, std::string trig,
              std::string m = "sysrq")
        : cgroup_root(std::move(cg)),
          proc(std::move(p)),
          pod_logs(std::move(logs)),
          kmsg(std::move(k)),
          trigger(std::move(trig)),
          mode(std::move(m)) {}
    std::string cgroup_root, proc, pod_logs, kmsg, trigger;
    std::string mode;
    std::string extra_kubernetes;
    std::string extra_action;  // more [action] keys
    std::string extra;         // more sections
    std::string repeat_after = "1h";
    std::string lock;  // [paths] lock, when set
};

std::string write_config(const TempDir& tmp, const NodePaths& s) {
    const std::string path = tmp / "oomguard.toml";
    makeFile(path,
             "[memory]\nmin_available = \"2GiB\"\n"
             "[action]\nmode = \"" +
                 s.mode + "\"\nsysrq_trigger = \"" + s.trigger + "\"\nrepeat_after = \"" +
                 s.repeat_after + "\"\n" + s.extra_action +
                 "\n"
                 "[poll]\npsi = false\nmax_interval = \"50ms\"\n"
                 "[paths]\nproc = \"" +
                 s.proc + "\"\ncgroup = \"" + s.cgroup_root + "\"\nkmsg = \"" + s.kmsg +
                 "\"\n" + (s.lock.empty() ? "" : "lock = \"" + s.lock + "\"\n") +
                 "[kubernetes]\npod_logs_dir = \"" +
                 s.pod_logs + "\"\n" + s.extra_kubernetes + "\n" + s.extra);
    return path;
}

std::vector<std::string> args(const std::string& config, bool dry_run) {
    std::vector<std::string> a = {"--config", config, "--log-target=stderr", "--no-mlock"};
    if (dry_run) a.push_back("--dry-run");
    return a;
}

#define REQUIRE_REAL_CGROUPS()                                     \
    do {                                                           \
        std::string why = real_cgroups_unavailable();              \
        if (!why.empty()) GTEST_SKIP() << "real cgroups: " << why; \
    } while (0)

std::string ctr_path(const std::string& qos, unsigned n, unsigned c) {
    return "kubepods/" + (qos.empty() ? "" : qos + "/") + "pod" + pod_uid(n) + "/" +
           container_id(c);
}

}  // namespace

// The done-when of the cgroup issue: 110 pods x 4 containers, dry-run, the
// threshold above MemAvailable: the trigger entry names the heaviest pod.
TEST(DaemonCgroups, FixtureNode110x4DryRunNamesTheHeaviestPod) {
    TempDir tmp;
    FakeCgroupFs fs(tmp / "cgroup", CgroupVersion::V2);
    FakePodLogs logs(tmp / "log");
    FakeProc proc(tmp / "proc");
    proc.meminfo(8ull << 30, 1ull << 30);  // 1 GiB available < 2 GiB threshold
    KubeLayout L{CgroupDriver::Systemd, Runtime::Containerd};
    fs.cgroup(L.kubepods(), 0);  // no memory limit: node allocatable not enforced
    fs.cgroup(L.qos_dir(QosClass::Burstable), 0);
    fs.cgroup(L.qos_dir(QosClass::BestEffort), 0);
    const QosClass qos[] = {QosClass::Guaranteed, QosClass::Burstable, QosClass::BestEffort};
    for (unsigned i = 0; i < 110; ++i) {
        QosClass q = qos[i % 3];
        uint64_t ws = (i == 64 ? 2500 : 20 + (i * 53) % 700) * MiB;  // pod 64 is the heaviest
        uint64_t cache = (i == 9 ? 6000 : 30) * MiB;                 // pod 9: page cache decoy
        const std::string dir = L.pod_dir(q, pod_uid(i));
        fs.cgroup(dir, ws + cache, cache);
        const std::string ns = i == 64 ? "shop" : "ns" + std::to_string(i % 5);
        logs.pod(ns, "pod-" + std::to_string(i), pod_uid(i));
        for (unsigned c = 0; c < 4; ++c) {
            unsigned id = i * 4 + c;
            fs.cgroup(dir + "/" + L.container_name(container_id(id)), ws / 8 * (c + 1), 0);
            logs.container(ns, "pod-" + std::to_string(i), pod_uid(i), "c" + std::to_string(c),
                           container_id(id));
        }
    }
    NodePaths s{fs.root(), proc.dir(), logs.pods_dir(), tmp / "kmsg", tmp / "trigger"};
    s.repeat_after = "1s";
    // This tests naming, not the scan budget: under load the 20 ms default was hit.
    s.extra_kubernetes = "scan_budget = \"1s\"\n";
    makeFile(s.kmsg, "");
    makeFile(s.trigger, "");
    DaemonProcess d(args(write_config(tmp, s), /*dry_run=*/true));

    // At start, before the first decision: the allocatable warning and the heaviest (Event::Heaviest).
    EXPECT_FALSE(d.wait_event("no-allocatable", "has no memory limit").empty()) << d.log();
    std::string heaviest = d.wait_event("heaviest");
    EXPECT_EQ(field(heaviest, "OOMGUARD_POD_NAME"), "pod-64") << heaviest;

    std::string trig = d.wait_event("trigger", "OOMGUARD_POD_NAME=");
    ASSERT_FALSE(trig.empty()) << d.log();
    EXPECT_EQ(field(trig, "OOMGUARD_POD_NAME"), "pod-64") << trig;
    EXPECT_EQ(field(trig, "OOMGUARD_POD_NAMESPACE"), "shop");
    EXPECT_EQ(field(trig, "OOMGUARD_POD_UID"), pod_uid(64));
    EXPECT_EQ(field(trig, "OOMGUARD_QOS"), "Burstable");
    EXPECT_EQ(field(trig, "OOMGUARD_CONTAINER_NAME"), "c3");
    EXPECT_EQ(field(trig, "OOMGUARD_CONTAINER_ID"), container_id(64 * 4 + 3));
    EXPECT_EQ(field(trig, "OOMGUARD_WORKING_SET_BYTES"), std::to_string(2500 * MiB));
    EXPECT_EQ(field(trig, "OOMGUARD_CGROUP"), "/" + L.pod_dir(QosClass::Burstable, pod_uid(64)));
    EXPECT_EQ(field(trig, "OOMGUARD_OOM_GROUP"), "1");
    EXPECT_NE(trig.find("dry-run: would ask the kernel OOM killer to kill one task (sysrq f"), std::string::npos);
    EXPECT_NE(trig.find("WORKING SET"), std::string::npos) << "no top-5 table:\n" << trig;
    EXPECT_NE(trig.find("shop/pod-64 [c3]"), std::string::npos) << trig;
    EXPECT_NE(trig.find("(105 more)"), std::string::npos) << trig;
    EXPECT_EQ(trig.find("pod-9 "), std::string::npos) << "the page-cache decoy was ranked:\n"
                                                      << trig;
    std::printf("[ info ] 110x4 fixture: scan %s us, scan+report before the trigger %s us\n",
                field(trig, "OOMGUARD_SCAN_USEC").c_str(),
                field(trig, "OOMGUARD_DESCRIBE_USEC").c_str());

    // The kernel then kills a process of that pod on its own (dry-run wrote no
    // 'f'): the victim is named, and the memory that came back is measured.
    int fd = ::open(s.kmsg.c_str(), O_WRONLY | O_APPEND);
    std::string cg = "/" + L.pod_dir(QosClass::Burstable, pod_uid(64)) + "/" +
                     L.container_name(container_id(64 * 4 + 3));
    std::string recs =
        "6,100,1,-;sysrq: Manual OOM execution\n"
        "4,101,2,-;oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,"
        "global_oom,task_memcg=" +
        cg +
        ",task=java,pid=4242,uid=1000\n"
        "3,102,3,-;Out of memory: Killed process 4242 (java) total-vm:3000000kB, "
        "anon-rss:2000000kB, "
        "file-rss:4kB, shmem-rss:0kB, UID:1000 pgtables:5000kB oom_score_adj:936\n";
    ASSERT_EQ(::write(fd, recs.data(), recs.size()), static_cast<ssize_t>(recs.size()));
    ::close(fd);
    proc.meminfo(8ull << 30, 3ull << 30);  // 2 GiB came back
    std::string v = d.wait_event("victim", "OOMGUARD_VICTIM_PID=4242");
    ASSERT_FALSE(v.empty()) << d.log();
    EXPECT_EQ(field(v, "OOMGUARD_POD_NAME"), "pod-64");
    EXPECT_EQ(field(v, "OOMGUARD_CONTAINER_NAME"), "c3");
    // Red-team finding 5: a dry-run trigger is no trigger of this kill.
    EXPECT_EQ(field(v, "OOMGUARD_AFTER_TRIGGER"), "0") << v;
    EXPECT_NE(v.find("(not after an oomguard trigger)"), std::string::npos) << v;
    EXPECT_EQ(v.find("of oomguard's trigger"), std::string::npos) << v;
    EXPECT_FALSE(field(v, "OOMGUARD_REGAIN_USEC").empty());
    EXPECT_EQ(d.stop(), 0);
    EXPECT_EQ(readFile(s.trigger), "") << "dry-run wrote the trigger";
}

TEST(DaemonCgroups, NoKubepodsRanksTopLevelCgroupsAtStart) {
    TempDir tmp;
    FakeCgroupFs fs(tmp / "cgroup", CgroupVersion::V1, /*hybrid=*/true);
    FakeProc proc(tmp / "proc");  // plenty available: no trigger
    fs.cgroup("system.slice/postgresql.service", 900 * MiB, 800 * MiB);
    fs.cgroup("system.slice/java-app.service", 700 * MiB, 10 * MiB);
    fs.cgroup("user.slice/user-1000.slice", 300 * MiB);
    NodePaths s{fs.root(), proc.dir(), tmp / "nopods", tmp / "kmsg", tmp / "trigger"};
    makeFile(s.kmsg, "");
    DaemonProcess d(args(write_config(tmp, s), true));
    std::string h = d.wait_event("heaviest", "OOMGUARD_CGROUP=");
    ASSERT_FALSE(h.empty()) << d.log();
    EXPECT_EQ(field(h, "OOMGUARD_CGROUP"), "/system.slice/java-app.service") << h;
    EXPECT_NE(h.find("/user.slice/user-1000.slice"), std::string::npos) << h;
    EXPECT_TRUE(field(h, "OOMGUARD_POD_NAME").empty());
    EXPECT_NE(d.log().find("hybrid"), std::string::npos);
    EXPECT_NE(d.log().find("not a Kubernetes node"), std::string::npos);
    EXPECT_EQ(d.stop(), 0);
}

TEST(DaemonCgroups, KillCgroupFallsBackToSysrqWhenNothingIsEligible) {
    TempDir tmp;
    FakeCgroupFs fs(tmp / "cgroup", CgroupVersion::V2);
    FakePodLogs logs(tmp / "log");
    FakeProc proc(tmp / "proc");
    proc.meminfo(8ull << 30, 1ull << 30);
    fs.cgroup("kubepods", 0, 0, 6ull << 30);  // allocatable enforced
    fs.cgroup("kubepods/besteffort/pod" + pod_uid(1), 900 * MiB);
    fs.cgroup("kubepods/besteffort/pod" + pod_uid(1) + "/" + container_id(1), 900 * MiB);
    logs.pod("kube-system", "coredns", pod_uid(1));
    fs.cgroup("kubepods/pod" + pod_uid(2), 500 * MiB);  // Guaranteed
    fs.cgroup("kubepods/pod" + pod_uid(2) + "/" + container_id(2), 500 * MiB);
    logs.pod("default", "db", pod_uid(2));
    NodePaths s{fs.root(),    proc.dir(),      logs.pods_dir(),
                tmp / "kmsg", tmp / "trigger", "kill-cgroup"};
    makeFile(s.kmsg, "");
    makeFile(s.trigger, "");
    DaemonProcess d(args(write_config(tmp, s), false));
    std::string t = d.wait_event("trigger", "OOMGUARD_ACTION=");
    ASSERT_FALSE(t.empty()) << d.log();
    EXPECT_NE(t.find("no eligible container"), std::string::npos) << t;
    EXPECT_NE(t.find("kube-system is excluded"), std::string::npos) << t;
    EXPECT_NE(t.find("Guaranteed (kill_guaranteed = false)"), std::string::npos) << t;
    EXPECT_NE(t.find("falling back to sysrq: asked the kernel OOM killer to kill one task (sysrq f"), std::string::npos) << t;
    EXPECT_EQ(field(t, "OOMGUARD_ACTION"), "sysrq");
    EXPECT_EQ(d.stop(), 0);
    EXPECT_EQ(readFile(s.trigger), "f");
    EXPECT_NE(d.log().find("node allocatable is enforced: /kubepods is limited to 6.0 GiB"),
              std::string::npos)
        << d.log();
}

TEST(DaemonCgroups, RealCgroupsHeaviestPodNamedBeforeTheTrigger) {
    REQUIRE_REAL_CGROUPS();
    TempDir tmp;
    TempDir disk(kOnDisk);  // page cache needs a disk filesystem
    RealCgroupTree t;
    FakePodLogs logs(tmp / "log");
    FakeProc proc(tmp / "proc");
    proc.meminfo(8ull << 30, 1ull << 30);
    t.make(ctr_path("besteffort", 1, 11));
    t.make(ctr_path("burstable", 2, 21));
    t.make(ctr_path("burstable", 2, 22));
    t.make(ctr_path("", 3, 31));  // Guaranteed
    logs.pod("default", "small", pod_uid(1));
    logs.container("default", "small", pod_uid(1), "app", container_id(11));
    logs.pod("payments", "ledger-0", pod_uid(2));
    logs.container("payments", "ledger-0", pod_uid(2), "ledger", container_id(21));
    logs.container("payments", "ledger-0", pod_uid(2), "envoy", container_id(22));
    logs.pod("default", "cache", pod_uid(3));
    logs.container("default", "cache", pod_uid(3), "reader", container_id(31));
    ASSERT_GT(t.spawn(ctr_path("besteffort", 1, 11), 8 * MiB), 0);
    ASSERT_GT(t.spawn(ctr_path("burstable", 2, 21), 40 * MiB), 0);
    ASSERT_GT(t.spawn(ctr_path("burstable", 2, 22), 6 * MiB), 0);
    ASSERT_GT(t.spawn(ctr_path("", 3, 31), 1 * MiB, 80 * MiB, disk.path()), 0);  // page cache
    // The kernel folds per-cpu memcg counters into the pod's hierarchical
    // total_inactive_file lazily (up to ~2 s): wait until the decoy's page cache
    // shows there, or the test measures the kernel's flush, not the ranking.
    {
        const std::string stat = t.parent() + "/kubepods/pod" + pod_uid(3) + "/memory.stat";
        for (int i = 0; i < 300; ++i) {
            const std::string text = readFile(stat);
            size_t p = text.find("total_inactive_file ");
            if (p != std::string::npos &&
                std::strtoull(text.c_str() + p + 20, nullptr, 10) >= 60 * MiB)
                break;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }

    NodePaths s{t.parent(), proc.dir(), logs.pods_dir(), tmp / "kmsg", tmp / "trigger"};
    makeFile(s.kmsg, "");
    DaemonProcess d(args(write_config(tmp, s), true));
    std::string trig = d.wait_event("trigger", "OOMGUARD_POD_NAME=");
    ASSERT_FALSE(trig.empty()) << d.log();
    EXPECT_EQ(field(trig, "OOMGUARD_POD_NAMESPACE"), "payments") << trig;
    EXPECT_EQ(field(trig, "OOMGUARD_POD_NAME"), "ledger-0");
    EXPECT_EQ(field(trig, "OOMGUARD_CONTAINER_NAME"), "ledger");
    EXPECT_EQ(field(trig, "OOMGUARD_CONTAINER_ID"), container_id(21));
    EXPECT_EQ(field(trig, "OOMGUARD_QOS"), "Burstable");
    EXPECT_EQ(field(trig, "OOMGUARD_CGROUP"), "/kubepods/burstable/pod" + pod_uid(2));
    uint64_t ws = std::strtoull(field(trig, "OOMGUARD_WORKING_SET_BYTES").c_str(), nullptr, 10);
    EXPECT_GE(ws, 46 * MiB);
    EXPECT_LT(ws, 60 * MiB);
    EXPECT_EQ(d.stop(), 0);
}

TEST(DaemonCgroups, RealKernelMemcgOomKillIsReported) {
    REQUIRE_REAL_CGROUPS();
    if (int fd = ::open("/dev/kmsg", O_RDONLY | O_NONBLOCK); fd < 0)
        GTEST_SKIP() << "cannot read /dev/kmsg: " << std::strerror(errno);
    else
        ::close(fd);
    TempDir tmp;
    RealCgroupTree t;
    FakePodLogs logs(tmp / "log");
    FakeProc proc(tmp / "proc");  // plenty available: no trigger
    const std::string ctr = ctr_path("burstable", 7, 77);
    t.make(ctr);
    t.set_limit(ctr, 16 * MiB);
    logs.pod("etl", "loader-x1", pod_uid(7));
    logs.container("etl", "loader-x1", pod_uid(7), "loader", container_id(77));
    NodePaths s{t.parent(), proc.dir(), logs.pods_dir(), "/dev/kmsg", tmp / "trigger"};
    DaemonProcess d(args(write_config(tmp, s), true));
    ASSERT_FALSE(d.wait_event("heaviest").empty()) << d.log();  // running, kmsg open

    pid_t pid = t.spawn_doomed(ctr, 64 * MiB);
    int st = 0;
    ASSERT_TRUE(t.reap(pid, &st));
    ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << "the child was not OOM-killed";
    std::string k = d.wait_event("kernel-oom", "OOMGUARD_VICTIM_PID=" + std::to_string(pid) + " ");
    ASSERT_FALSE(k.empty()) << d.log();
    EXPECT_EQ(field(k, "OOMGUARD_POD_NAMESPACE"), "etl");
    EXPECT_EQ(field(k, "OOMGUARD_POD_NAME"), "loader-x1");
    EXPECT_EQ(field(k, "OOMGUARD_CONTAINER_NAME"), "loader");
    EXPECT_EQ(field(k, "OOMGUARD_QOS"), "Burstable");
    EXPECT_EQ(field(k, "OOMGUARD_CONSTRAINT"), "CONSTRAINT_MEMCG");
    EXPECT_EQ(field(k, "OOMGUARD_CGROUP"), t.kernel_path(ctr));
    EXPECT_EQ(field(k, "OOMGUARD_KERNEL_OOM_KILLS"), "1");
    EXPECT_EQ(d.stop(), 0);
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
    TempDir tmp;
    FakeCgroupFs fs(tmp / "cgroup", CgroupVersion::V1);
    FakePodLogs logs(tmp / "log");
    FakeProc proc(tmp / "proc");
    proc.meminfo(8ull << 30, 1ull << 30);
    KubeLayout L{CgroupDriver::Systemd, Runtime::Crio};
    fs.cgroup(L.kubepods(), 0);
    const std::string pod = L.pod_dir(QosClass::BestEffort, pod_uid(1));
    fs.cgroup(pod, 300 * MiB);
    fs.cgroup(pod + "/" + L.container_name(container_id(1)), 250 * MiB);
    fs.procs(pod + "/" + L.container_name(container_id(1)), "4242\n");
    makeFile(proc.dir() + "/4242/oom_score_adj", "1000\n");
    fs.cgroup(pod + "/" + L.conmon_name(container_id(1)),
              400 * MiB);  // heavier, but not a container
    logs.pod("default", "worker", pod_uid(1));
    logs.container("default", "worker", pod_uid(1), "main", container_id(1));
    NodePaths s{fs.root(),    proc.dir(),      logs.pods_dir(),
                tmp / "kmsg", tmp / "trigger", "kill-cgroup"};
    makeFile(s.kmsg, "");
    makeFile(s.trigger, "");
    DaemonProcess d(args(write_config(tmp, s), true));
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
    EXPECT_EQ(readFile(s.trigger), "");
}

// Red-team finding 1: the victim goes by QoS (BestEffort first), the heaviest
// pod may be another one. The old entry said "would kill ... pod3 (BestEffort)"
// but carried OOMGUARD_POD_NAME=pod2 (the heaviest, Burstable).
TEST(DaemonCgroups, KillCgroupEntryFieldsNameTheVictimNotTheHeaviest) {
    TempDir tmp;
    FakeCgroupFs fs(tmp / "cgroup", CgroupVersion::V2);
    FakePodLogs logs(tmp / "log");
    FakeProc proc(tmp / "proc");
    proc.meminfo(8ull << 30, 1ull << 30);
    KubeLayout L{CgroupDriver::Systemd, Runtime::Containerd};
    fs.cgroup(L.kubepods(), 0);
    fs.cgroup(L.qos_dir(QosClass::Burstable), 0);
    fs.cgroup(L.qos_dir(QosClass::BestEffort), 0);
    const std::string heavy = L.pod_dir(QosClass::Burstable, pod_uid(2));
    const std::string light = L.pod_dir(QosClass::BestEffort, pod_uid(3));
    fs.cgroup(heavy, 900 * MiB);
    fs.cgroup(heavy + "/" + L.container_name(container_id(2)), 850 * MiB);
    fs.procs(heavy + "/" + L.container_name(container_id(2)), "4202\n");
    makeFile(proc.dir() + "/4202/oom_score_adj", "900\n");
    fs.cgroup(light, 300 * MiB);
    fs.cgroup(light + "/" + L.container_name(container_id(3)), 250 * MiB);
    fs.procs(light + "/" + L.container_name(container_id(3)), "4303\n");
    makeFile(proc.dir() + "/4303/oom_score_adj", "1000\n");
    logs.pod("default", "pod2", pod_uid(2));
    logs.container("default", "pod2", pod_uid(2), "big", container_id(2));
    logs.pod("default", "pod3", pod_uid(3));
    logs.container("default", "pod3", pod_uid(3), "small", container_id(3));
    NodePaths s{fs.root(),    proc.dir(),      logs.pods_dir(),
                tmp / "kmsg", tmp / "trigger", "kill-cgroup"};
    makeFile(s.kmsg, "");
    makeFile(s.trigger, "");
    DaemonProcess d(args(write_config(tmp, s), true));
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
    TempDir tmp;
    FakeCgroupFs fs(tmp / "cgroup", CgroupVersion::V2);
    FakePodLogs logs(tmp / "log");
    FakeProc proc(tmp / "proc");
    proc.meminfo(8ull << 30, 1ull << 30);
    fs.cgroup("kubepods", 0);
    for (unsigned i : {1u, 2u}) {
        const std::string pod = "kubepods/besteffort/pod" + pod_uid(i);
        const std::string ctr = pod + "/" + container_id(i);
        fs.cgroup(pod, (i == 1 ? 900 : 400) * MiB);
        fs.cgroup(ctr, (i == 1 ? 900 : 400) * MiB);
        makeFile(fs.root() + "/" + ctr + "/cgroup.kill", "");  // accepts the write, kills nothing
        fs.procs(ctr, std::to_string(5000 + i) + "\n");
        makeFile(proc.dir() + "/" + std::to_string(5000 + i) + "/oom_score_adj", "1000\n");
        const std::string name = i == 1 ? "first" : "second";
        logs.pod("default", name, pod_uid(i));
        logs.container("default", name, pod_uid(i), "main", container_id(i));
    }
    NodePaths s{fs.root(),    proc.dir(),      logs.pods_dir(),
                tmp / "kmsg", tmp / "trigger", "kill-cgroup"};
    s.repeat_after = "1s";
    makeFile(s.kmsg, "");
    makeFile(s.trigger, "");
    DaemonProcess d(args(write_config(tmp, s), false));
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
    EXPECT_EQ(readFile(s.trigger), "f");
}

// Red-team finding 3: a dry-run "trigger" used up the real action's turn: a
// reload from mode = "dry-run" to a real mode mid-episode waited repeat_after
// (here 1 h) before the first real write. Now it is due at once.
TEST(DaemonCgroups, ReloadFromDryRunToRealActsAtOnce) {
    TempDir tmp;
    FakeCgroupFs fs(tmp / "cgroup", CgroupVersion::V2);
    FakePodLogs logs(tmp / "log");
    FakeProc proc(tmp / "proc");
    proc.meminfo(8ull << 30, 1ull << 30);
    NodePaths s{fs.root(),    proc.dir(),      logs.pods_dir(),
                tmp / "kmsg", tmp / "trigger", "dry-run"};
    s.repeat_after = "1h";
    makeFile(s.kmsg, "");
    makeFile(s.trigger, "");
    const std::string config = write_config(tmp, s);
    DaemonProcess d(args(config, false));
    ASSERT_FALSE(d.wait_event("trigger", "dry-run: would ask the kernel OOM killer").empty()) << d.log();
    s.mode = "sysrq";
    write_config(tmp, s);
    ::kill(d.pid(), SIGHUP);
    ASSERT_FALSE(d.wait_event("reload").empty()) << d.log();
    std::string t = d.wait_event("trigger", "asked the kernel OOM killer", std::chrono::seconds(3));
    EXPECT_FALSE(t.empty()) << "no real action after the reload from dry-run\n" << d.log();
    EXPECT_EQ(d.stop(), 0);
    EXPECT_EQ(readFile(s.trigger), "f");
}

// Red-team finding 6: a trigger path that cannot be opened showed only at the
// first crossing. Now start and reload open it for writing (never write) and
// warn, naming the path and errno; a FIFO without a reader is "no reader yet".
TEST(DaemonCgroups, UnusableTriggerPathIsReportedAtStartAndReload) {
    TempDir tmp;
    FakeCgroupFs fs(tmp / "cgroup", CgroupVersion::V2);
    FakePodLogs logs(tmp / "log");
    FakeProc proc(tmp / "proc");  // plenty available: no crossing
    NodePaths s{fs.root(),    proc.dir(),      logs.pods_dir(),
                tmp / "kmsg", tmp / "no-such-dir/trigger"};
    makeFile(s.kmsg, "");
    DaemonProcess d(args(write_config(tmp, s), false));
    ASSERT_FALSE(d.wait_event("start").empty()) << d.log();  // then SIGHUP is handled
    std::string w = d.wait_entry(
        [&](const std::string& e) {
            return e.find("cannot be opened for writing") != std::string::npos;
        },
        std::chrono::seconds(5));
    EXPECT_FALSE(w.empty()) << d.log();
    EXPECT_NE(w.find(s.trigger), std::string::npos) << w;
    EXPECT_NE(w.find("No such file or directory"), std::string::npos) << w;
    EXPECT_EQ(field(w, "ERRNO"), std::to_string(ENOENT)) << w;
    // Reload onto a FIFO without a reader: a supported setup, said as such.
    s.trigger = tmp / "fifo";
    ASSERT_EQ(::mkfifo(s.trigger.c_str(), 0600), 0);
    write_config(tmp, s);
    ::kill(d.pid(), SIGHUP);
    std::string f = d.wait_entry(
        [&](const std::string& e) { return e.find("no reader yet") != std::string::npos; },
        std::chrono::seconds(5));
    EXPECT_FALSE(f.empty()) << d.log();
    EXPECT_NE(f.find(s.trigger), std::string::npos) << f;
    EXPECT_EQ(d.stop(), 0);
}

// Red-team finding 7: every reload logged the whole heaviest table and the
// allocatable warning (a SIGHUP storm: 7.2 MB of log in 8 s, enough for
// journald's rate limit to drop trigger entries). Now only when they changed,
// or once a minute.
TEST(DaemonCgroups, ReloadsDoNotRepeatAnUnchangedHeaviestTable) {
    TempDir tmp;
    FakeCgroupFs fs(tmp / "cgroup", CgroupVersion::V2);
    FakePodLogs logs(tmp / "log");
    FakeProc proc(tmp / "proc");  // plenty available: no crossing
    fs.cgroup("kubepods", 0);     // no limit: the allocatable warning
    fs.cgroup("kubepods/besteffort/pod" + pod_uid(1), 900 * MiB);
    fs.cgroup("kubepods/besteffort/pod" + pod_uid(1) + "/" + container_id(1), 900 * MiB);
    logs.pod("default", "hog", pod_uid(1));
    NodePaths s{fs.root(),    proc.dir(),      logs.pods_dir(),
                tmp / "kmsg", tmp / "trigger"};
    makeFile(s.kmsg, "");
    makeFile(s.trigger, "");
    DaemonProcess d(args(write_config(tmp, s), false));
    ASSERT_FALSE(d.wait_event("heaviest").empty()) << d.log();
    auto pause = [&] { d.wait_entry([](const std::string&) { return false; },
                                    std::chrono::milliseconds(200)); };
    for (int i = 0; i < 5; ++i) {
        ::kill(d.pid(), SIGHUP);
        pause();  // apart, so that they are separate reloads
    }
    // A changed ranking is logged at the next reload.
    fs.cgroup("kubepods/besteffort/pod" + pod_uid(2), 1900 * MiB);
    fs.cgroup("kubepods/besteffort/pod" + pod_uid(2) + "/" + container_id(2), 1900 * MiB);
    ::kill(d.pid(), SIGHUP);
    pause();
    EXPECT_EQ(d.stop(), 0);
    const std::string out = d.log();
    auto count = [&](const std::string& needle) {
        size_t n = 0;
        for (size_t p = out.find(needle); p != std::string::npos; p = out.find(needle, p + 1))
            ++n;
        return n;
    };
    EXPECT_GE(count(">reload:"), 3u) << out;
    EXPECT_EQ(count(">heaviest:"), 2u) << out;
    EXPECT_EQ(count(">no-allocatable:"), 1u) << out;
    size_t last = out.rfind(">heaviest:");
    ASSERT_NE(last, std::string::npos);
    EXPECT_NE(out.find(pod_uid(2), last), std::string::npos) << "the changed ranking:\n" << out;
}

// Red-team finding 8: two instances on one node (host package and DaemonSet)
// both acted on the same crossing. The second now refuses to start, naming the
// holder's pid (written into the lock file).
TEST(DaemonCgroups, SecondInstanceRefusesToStartNamingTheHolder) {
    TempDir tmp;
    FakeCgroupFs fs(tmp / "cgroup", CgroupVersion::V2);
    FakePodLogs logs(tmp / "log");
    FakeProc proc(tmp / "proc");  // plenty available: no crossing
    NodePaths s{fs.root(), proc.dir(), logs.pods_dir(), tmp / "kmsg", tmp / "trigger"};
    s.lock = tmp / "oomguard.lock";
    makeFile(s.kmsg, "");
    makeFile(s.trigger, "");
    const std::string config = write_config(tmp, s);
    DaemonProcess a(args(config, false));
    ASSERT_FALSE(a.wait_event("start").empty()) << a.log();
    EXPECT_EQ(readFile(s.lock), std::to_string(a.pid()) + "\n");
    DaemonProcess b(args(config, false));
    std::string refused = b.wait_entry(
        [](const std::string& e) { return e.find("another oomguard instance") != std::string::npos; },
        std::chrono::seconds(5));
    EXPECT_FALSE(refused.empty()) << b.log();
    EXPECT_NE(refused.find("(pid " + std::to_string(a.pid()) + ")"), std::string::npos) << refused;
    EXPECT_NE(refused.find(s.lock), std::string::npos) << refused;
    EXPECT_EQ(b.log().find(">start:"), std::string::npos) << b.log();
    // Until its output ends (it exits by itself), then its exit code.
    b.wait_entry([](const std::string&) { return false; }, std::chrono::seconds(3));
    EXPECT_EQ(b.stop(), 1);
    // Once the first is gone, a new one starts.
    EXPECT_EQ(a.stop(), 0);
    DaemonProcess c(args(config, false));
    EXPECT_FALSE(c.wait_event("start").empty()) << c.log();
    EXPECT_EQ(c.stop(), 0);
}

// Issue 10, defect 5: cgroup.kill written but the cgroup not empty at once
// (dying multi-GiB tasks stay listed while their memory is freed): that is the
// action. The old daemon called it a failure after 500 ms and wrote sysrq too,
// killing a second victim.
TEST(DaemonCgroups, KillCgroupThatDoesNotEmptyAtOnceIsNotFollowedBySysrq) {
    TempDir tmp;
    FakeCgroupFs fs(tmp / "cgroup", CgroupVersion::V2);
    FakePodLogs logs(tmp / "log");
    FakeProc proc(tmp / "proc");
    proc.meminfo(8ull << 30, 1ull << 30);
    fs.cgroup("kubepods", 0);
    const std::string ctr = "kubepods/besteffort/pod" + pod_uid(1) + "/" + container_id(1);
    fs.cgroup("kubepods/besteffort/pod" + pod_uid(1), 900 * MiB);
    fs.cgroup(ctr, 900 * MiB);
    makeFile(fs.root() + "/" + ctr + "/cgroup.kill", "");  // accepts the write, kills nothing
    pid_t child = ::fork();
    if (child == 0) {
        for (;;) ::pause();
    }
    ASSERT_GT(child, 0);
    fs.procs(ctr, std::to_string(child) + "\n");
    makeFile(proc.dir() + "/" + std::to_string(child) + "/oom_score_adj", "1000\n");
    logs.pod("default", "hog", pod_uid(1));
    logs.container("default", "hog", pod_uid(1), "main", container_id(1));
    NodePaths s{fs.root(),    proc.dir(),      logs.pods_dir(),
                tmp / "kmsg", tmp / "trigger", "kill-cgroup"};
    makeFile(s.kmsg, "");
    makeFile(s.trigger, "");
    DaemonProcess d(args(write_config(tmp, s), false));
    std::string t = d.wait_event("trigger", "OOMGUARD_ACTION=");
    ASSERT_FALSE(t.empty()) << d.log();
    EXPECT_NE(t.find("killed container main of pod default/hog"), std::string::npos) << t;
    EXPECT_NE(t.find("via cgroup.kill"), std::string::npos) << t;
    // Well past the old 500 ms bound: still no sysrq, no second action.
    d.wait_entry([](const std::string&) { return false; }, std::chrono::milliseconds(1200));
    EXPECT_EQ(readFile(s.trigger), "") << "sysrq written after a successful cgroup.kill\n"
                                       << d.log();
    EXPECT_EQ(d.log().find("trigger-failed"), std::string::npos) << d.log();
    // The emptying is watched from the loop and logged with what came back.
    fs.procs(ctr, "");
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
    TempDir tmp;
    FakeCgroupFs fs(tmp / "cgroup", CgroupVersion::V1);
    FakePodLogs logs(tmp / "log");
    FakeProc proc(tmp / "proc");
    proc.meminfo(8ull << 30, 1ull << 30);
    fs.cgroup("kubepods", 0);
    const std::string ctr = "kubepods/besteffort/pod" + pod_uid(1) + "/" + container_id(1);
    fs.cgroup("kubepods/besteffort/pod" + pod_uid(1), 900 * MiB);
    fs.cgroup(ctr, 900 * MiB);
    fs.procs(ctr, "0\n0\n");
    logs.pod("default", "hog", pod_uid(1));
    logs.container("default", "hog", pod_uid(1), "main", container_id(1));
    NodePaths s{fs.root(),    proc.dir(),      logs.pods_dir(),
                tmp / "kmsg", tmp / "trigger", "kill-cgroup"};
    makeFile(s.kmsg, "");
    makeFile(s.trigger, "");
    DaemonProcess d(args(write_config(tmp, s), false));
    std::string t = d.wait_event("trigger", "OOMGUARD_ACTION=");
    ASSERT_FALSE(t.empty()) << d.log();
    EXPECT_EQ(field(t, "OOMGUARD_ACTION"), "sysrq") << t;
    EXPECT_NE(t.find("falling back to sysrq"), std::string::npos) << t;
    EXPECT_NE(d.log().find("kill-cgroup cannot kill containers here"), std::string::npos)
        << d.log();
    EXPECT_NE(d.log().find("hostPID"), std::string::npos) << d.log();
    EXPECT_EQ(d.stop(), 0);
    EXPECT_EQ(readFile(s.trigger), "f");
}

// Issue 10, defect 8: with fallback_sysrq = false, "no eligible container" is
// nothing done: a failure in the journal and the metrics, never a trigger.
TEST(DaemonCgroups, KillCgroupNothingDoneIsAFailureInEverySink) {
    TempDir tmp;
    FakeCgroupFs fs(tmp / "cgroup", CgroupVersion::V2);
    FakePodLogs logs(tmp / "log");
    FakeProc proc(tmp / "proc");
    proc.meminfo(8ull << 30, 1ull << 30);
    fs.cgroup("kubepods", 0);
    fs.cgroup("kubepods/besteffort/pod" + pod_uid(1), 900 * MiB);
    fs.cgroup("kubepods/besteffort/pod" + pod_uid(1) + "/" + container_id(1), 900 * MiB);
    logs.pod("kube-system", "coredns", pod_uid(1));
    NodePaths s{fs.root(),    proc.dir(),      logs.pods_dir(),
                tmp / "kmsg", tmp / "trigger", "kill-cgroup"};
    s.extra_action = "fallback_sysrq = false";
    s.extra = "[metrics]\ntextfile = \"" + (tmp / "oomguard.prom") + "\"\n";
    makeFile(s.kmsg, "");
    makeFile(s.trigger, "");
    DaemonProcess d(args(write_config(tmp, s), false));
    std::string f = d.wait_event("trigger-failed", "nothing done");
    ASSERT_FALSE(f.empty()) << d.log();
    EXPECT_NE(f.find("no eligible container"), std::string::npos) << f;
    EXPECT_EQ(field(f, "OOMGUARD_OUTCOME"), "failed") << f;
    d.wait_entry([](const std::string&) { return false; }, std::chrono::milliseconds(300));
    EXPECT_EQ(d.log().find(">trigger: "), std::string::npos)
        << "'nothing done' logged as a trigger\n"
        << d.log();
    const std::string prom = readFile(tmp / "oomguard.prom");
    EXPECT_NE(prom.find("oomguard_triggers_total 0\n"), std::string::npos) << prom;
    EXPECT_EQ(prom.find("oomguard_trigger_failures_total 0\n"), std::string::npos) << prom;
    EXPECT_EQ(d.stop(), 0);
    EXPECT_EQ(readFile(s.trigger), "");
}

// Issue 13 (node lab, real containerd): at a fast leak the trigger entry named
// the heaviest pod and container from an older ranking, while its
// OOMGUARD_RANKING_AGE_USEC said it was fresh. Here a pod exists at start with a
// small container; after the start's ranking a new container with a large
// memory.current appears in it (the pod's usage grows with it), and only then
// MemAvailable drops. The entry must name the new container from usages read
// after the trigger, and the ranking age must be the age of those readings.
namespace {

struct LeakNode {
    TempDir tmp;
    FakeCgroupFs fs{tmp / "cgroup", CgroupVersion::V2};
    FakePodLogs logs{tmp / "log"};
    FakeProc proc{tmp / "proc"};
    KubeLayout L{CgroupDriver::Systemd, Runtime::Containerd};
    std::string web = L.pod_dir(QosClass::Burstable, pod_uid(1));
    std::string leaky = L.pod_dir(QosClass::BestEffort, pod_uid(2));
    std::string leaker = leaky + "/" + L.container_name(container_id(22));

    LeakNode() {
        proc.meminfo(8ull << 30, 4ull << 30);  // above the 2 GiB threshold
        fs.cgroup(L.kubepods(), 0);
        fs.cgroup(L.qos_dir(QosClass::Burstable), 0);
        fs.cgroup(L.qos_dir(QosClass::BestEffort), 0);
        fs.cgroup(web, 185 * MiB);
        fs.cgroup(web + "/" + L.container_name(container_id(11)), 180 * MiB);
        fs.procs(web + "/" + L.container_name(container_id(11)), "4111\n");
        makeFile(proc.dir() + "/4111/oom_score_adj", "900\n");
        fs.cgroup(leaky, 10 * MiB);
        fs.cgroup(leaky + "/" + L.container_name(container_id(21)), 8 * MiB);
        fs.procs(leaky + "/" + L.container_name(container_id(21)), "4221\n");
        makeFile(proc.dir() + "/4221/oom_score_adj", "1000\n");
        logs.pod("prod", "web", pod_uid(1));
        logs.container("prod", "web", pod_uid(1), "web", container_id(11));
        logs.pod("batch", "leaky-job", pod_uid(2));
        logs.container("batch", "leaky-job", pod_uid(2), "helper", container_id(21));
    }
    // The leaker's container starts in the existing pod and eats 1000 MiB. 1.1 s
    // after the start's ranking (the lab's triggers came 1-2 s after the last
    // report): past the pod log links' min_relist, so that its name is known.
    void leak() {
        std::this_thread::sleep_for(std::chrono::milliseconds(1100));
        fs.cgroup(leaker, 1000 * MiB);
        fs.procs(leaker, "4222\n");
        makeFile(proc.dir() + "/4222/oom_score_adj", "1000\n");
        logs.container("batch", "leaky-job", pod_uid(2), "leaker", container_id(22));
        fs.set_usage(leaky, 1010 * MiB);
    }
};

}  // namespace

TEST(DaemonCgroups, TriggerNamesAContainerAddedToAnExistingPodSinceTheLastScan) {
    LeakNode n;
    NodePaths s{n.fs.root(), n.proc.dir(), n.logs.pods_dir(), n.tmp / "kmsg", n.tmp / "trigger"};
    makeFile(s.kmsg, "");
    makeFile(s.trigger, "");
    DaemonProcess d(args(write_config(n.tmp, s), /*dry_run=*/true));
    std::string h = d.wait_event("heaviest");
    ASSERT_EQ(field(h, "OOMGUARD_POD_NAME"), "web") << d.log();  // the start's ranking

    n.leak();
    const auto leaked = std::chrono::steady_clock::now();
    n.proc.meminfo(8ull << 30, 1ull << 30);  // 1 GiB < 2 GiB: trigger
    std::string trig = d.wait_event("trigger", "OOMGUARD_RANKING_AGE_USEC=");
    ASSERT_FALSE(trig.empty()) << d.log();
    const auto since_leak = std::chrono::duration_cast<std::chrono::microseconds>(
                                std::chrono::steady_clock::now() - leaked)
                                .count();
    EXPECT_EQ(field(trig, "OOMGUARD_POD_NAMESPACE"), "batch") << trig;
    EXPECT_EQ(field(trig, "OOMGUARD_POD_NAME"), "leaky-job") << trig;
    EXPECT_EQ(field(trig, "OOMGUARD_CONTAINER_NAME"), "leaker") << trig;
    EXPECT_EQ(field(trig, "OOMGUARD_CONTAINER_ID"), container_id(22)) << trig;
    EXPECT_EQ(field(trig, "OOMGUARD_WORKING_SET_BYTES"), std::to_string(1010 * MiB)) << trig;
    EXPECT_EQ(field(trig, "OOMGUARD_CONTAINER_WORKING_SET_BYTES"), std::to_string(1000 * MiB))
        << trig;
    // Honest age: the readings in the entry were taken after the leak, so they
    // cannot be older than the time since the leak.
    const long long age = std::atoll(field(trig, "OOMGUARD_RANKING_AGE_USEC").c_str());
    std::printf("[ info ] ranking age %lld us, leak to entry %lld us\n", age,
                static_cast<long long>(since_leak));
    EXPECT_LE(age, since_leak) << trig;
    EXPECT_EQ(d.stop(), 0);
}

TEST(DaemonCgroups, KillCgroupHeaviestFieldsNameAContainerAddedSinceTheLastScan) {
    LeakNode n;
    NodePaths s{n.fs.root(),    n.proc.dir(),      n.logs.pods_dir(),
                n.tmp / "kmsg", n.tmp / "trigger", "kill-cgroup"};
    makeFile(s.kmsg, "");
    makeFile(s.trigger, "");
    DaemonProcess d(args(write_config(n.tmp, s), /*dry_run=*/true));
    ASSERT_EQ(field(d.wait_event("heaviest"), "OOMGUARD_POD_NAME"), "web") << d.log();

    n.leak();
    n.proc.meminfo(8ull << 30, 1ull << 30);
    std::string t = d.wait_event("trigger", "OOMGUARD_RANKING_AGE_USEC=");
    ASSERT_FALSE(t.empty()) << d.log();
    EXPECT_NE(t.find("would kill container leaker of pod batch/leaky-job (BestEffort"),
              std::string::npos)
        << t;
    // The heaviest, named from the same readings as the victim.
    EXPECT_EQ(field(t, "OOMGUARD_HEAVIEST_POD_NAME"), "leaky-job") << t;
    EXPECT_EQ(field(t, "OOMGUARD_HEAVIEST_CONTAINER_NAME"), "leaker") << t;
    EXPECT_EQ(field(t, "OOMGUARD_HEAVIEST_WORKING_SET_BYTES"), std::to_string(1010 * MiB)) << t;
    EXPECT_EQ(d.stop(), 0);
}
