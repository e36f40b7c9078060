// The real oomguard binary names the heaviest pod and container: a fixture node
// of 110 pods x 4 containers, top-level cgroups, real v1 memory cgroups (root), a
// kernel memcg OOM kill, a container added since the last scan. ~8 s.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "daemon_cgroup_rig.hpp"

using namespace oomguard;
using namespace oomguard::test;
using namespace oomguard::test::daemon_cgroup_rig;

// The done-when of the cgroup issue: 110 pods x 4 containers, dry-run, the
// threshold above MemAvailable: the trigger entry names the heaviest pod.
TEST(DaemonCgroups, FixtureNode110x4DryRunNamesTheHeaviestPod) {
    FakeNode n(CgroupVersion::V2);  // 1 GiB available < 2 GiB threshold
    KubeLayout L{CgroupDriver::Systemd, Runtime::Containerd};
    n.fs.cgroup(L.kubepods(), 0);  // no memory limit: node allocatable not enforced
    n.fs.cgroup(L.qos_dir(QosClass::Burstable), 0);
    n.fs.cgroup(L.qos_dir(QosClass::BestEffort), 0);
    const QosClass qos[] = {QosClass::Guaranteed, QosClass::Burstable, QosClass::BestEffort};
    for (unsigned i = 0; i < 110; ++i) {
        QosClass q = qos[i % 3];
        uint64_t ws = (i == 64 ? 2500 : 20 + (i * 53) % 700) * MiB;  // pod 64 is the heaviest
        uint64_t cache = (i == 9 ? 6000 : 30) * MiB;                 // pod 9: page cache decoy
        const std::string dir = L.pod_dir(q, pod_uid(i));
        n.fs.cgroup(dir, ws + cache, cache);
        const std::string ns = i == 64 ? "shop" : "ns" + std::to_string(i % 5);
        n.logs.pod(ns, "pod-" + std::to_string(i), pod_uid(i));
        for (unsigned c = 0; c < 4; ++c) {
            unsigned id = i * 4 + c;
            n.fs.cgroup(dir + "/" + L.container_name(container_id(id)), ws / 8 * (c + 1), 0);
            n.logs.container(ns, "pod-" + std::to_string(i), pod_uid(i), "c" + std::to_string(c),
                             container_id(id));
        }
    }
    n.paths.repeat_after = "1s";
    // This tests naming, not the scan budget: under load the 20 ms default was hit.
    n.paths.extra_kubernetes = "scan_budget = \"1s\"\n";
    DaemonProcess& d = n.start(/*dry_run=*/true);

    // At start, before the first decision: the allocatable warning and the heaviest
    // (Event::Heaviest).
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
    EXPECT_NE(trig.find("dry-run: would ask the kernel OOM killer to kill one task (sysrq f"),
              std::string::npos);
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
    int fd = ::open(n.paths.kmsg.c_str(), O_WRONLY | O_APPEND);
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
    n.proc.meminfo(8ull << 30, 3ull << 30);  // 2 GiB came back
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
    EXPECT_EQ(readFile(n.paths.trigger), "") << "dry-run wrote the trigger";
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
    EXPECT_EQ(field(k, "OOMGUARD_MEMCG_OOM_KILLS"), "1");
    EXPECT_EQ(d.stop(), 0);
}

// Issue 13 (node lab, real containerd): at a fast leak the trigger entry named
// the heaviest pod and container from an older ranking, while its
// OOMGUARD_RANKING_AGE_USEC said it was fresh. Here a pod exists at start with a
// small container; after the start's ranking a new container with a large
// memory.current appears in it (the pod's usage grows with it), and only then
// MemAvailable drops. The entry must name the new container from usages read
// after the trigger, and the ranking age must be the age of those readings.
namespace {

struct LeakNode : FakeNode {
    KubeLayout L{CgroupDriver::Systemd, Runtime::Containerd};
    std::string web = L.pod_dir(QosClass::Burstable, pod_uid(1));
    std::string leaky = L.pod_dir(QosClass::BestEffort, pod_uid(2));
    std::string leaker = leaky + "/" + L.container_name(container_id(22));

    explicit LeakNode(std::string mode)
        : FakeNode(CgroupVersion::V2, std::move(mode), 4ull << 30) {  // above the 2 GiB threshold
        fs.cgroup(L.kubepods(), 0);
        fs.cgroup(L.qos_dir(QosClass::Burstable), 0);
        fs.cgroup(L.qos_dir(QosClass::BestEffort), 0);
        fs.cgroup(web, 185 * MiB);
        fs.cgroup(web + "/" + L.container_name(container_id(11)), 180 * MiB);
        task(web + "/" + L.container_name(container_id(11)), 4111, 900);
        fs.cgroup(leaky, 10 * MiB);
        fs.cgroup(leaky + "/" + L.container_name(container_id(21)), 8 * MiB);
        task(leaky + "/" + L.container_name(container_id(21)), 4221);
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
        task(leaker, 4222);
        logs.container("batch", "leaky-job", pod_uid(2), "leaker", container_id(22));
        fs.set_usage(leaky, 1010 * MiB);
    }
};

}  // namespace

TEST(DaemonCgroups, TriggerNamesAContainerAddedToAnExistingPodSinceTheLastScan) {
    LeakNode n("sysrq");
    DaemonProcess& d = n.start(/*dry_run=*/true);
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
    LeakNode n("kill-cgroup");
    DaemonProcess& d = n.start(/*dry_run=*/true);
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
