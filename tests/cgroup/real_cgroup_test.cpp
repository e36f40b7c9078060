// Real cgroup v1 memory cgroups on this machine: a kubepods-like tree under a
// uniquely named test parent, filled with real processes that allocate known
// amounts. The monitor is pointed at the parent (a v1 memory directory is a
// valid cgroup root). Skipped, with the reason, where v1 memory cgroups cannot
// be created.
#include "real_cgroup.hpp"

#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <memory>
#include <thread>

#include "cgroup/cgroup_killer.hpp"
#include "cgroup/cgroup_monitor.hpp"
#include "cgroup/kmsg.hpp"
#include "cgroup/oom_reporter.hpp"
#include "fixture.hpp"

using namespace oomguard;
using namespace oomguard::test;

namespace {

// The outcome's error message, or "(delivered)": for assertions, never a null read.
std::string why(const KillOutcome& o) { return o.error ? o.error->message : "(delivered)"; }

std::string pod_path(const std::string& qos, unsigned n) {
    return "kubepods/" + (qos.empty() ? "" : qos + "/") + "pod" + pod_uid(n);
}
std::string ctr_path(const std::string& qos, unsigned n, unsigned c) {
    return pod_path(qos, n) + "/" + container_id(c);
}

CgroupMonitor::Settings settings_for(const RealCgroupTree& t, const FakePodLogs& logs,
                                     const std::string& proc = "/proc") {
    CgroupMonitor::Settings s;
    s.cgroup_root = t.parent();
    s.pod_logs_dir = logs.pods_dir();
    s.proc_root = proc;
    return s;
}

}  // namespace

TEST(RealCgroups, NamesTheHeaviestPodAndContainerNotThePageCacheDecoy) {
    REQUIRE_REAL_CGROUPS();
    TempDir tmp;
    TempDir disk(kOnDisk);  // page cache needs a disk filesystem
    RealCgroupTree t;
    FakePodLogs logs(tmp / "log");
    // A: BestEffort, two containers (24 + 8 MiB). B: Burstable, 48 MiB: the heaviest.
    // C: BestEffort, 96 MiB of clean page cache and nothing else: the decoy.
    t.make(ctr_path("besteffort", 1, 11));
    t.make(ctr_path("besteffort", 1, 12));
    t.make(ctr_path("burstable", 2, 21));
    t.make(ctr_path("besteffort", 3, 31));
    logs.pod("team-a", "alpha", pod_uid(1));
    logs.container("team-a", "alpha", pod_uid(1), "worker", container_id(11));
    logs.container("team-a", "alpha", pod_uid(1), "helper", container_id(12));
    logs.pod("default", "bravo", pod_uid(2));
    logs.container("default", "bravo", pod_uid(2), "hog", container_id(21));
    logs.pod("cache", "charlie", pod_uid(3));
    logs.container("cache", "charlie", pod_uid(3), "reader", container_id(31));
    ASSERT_GT(t.spawn(ctr_path("besteffort", 1, 11), 24 * MiB), 0);
    ASSERT_GT(t.spawn(ctr_path("besteffort", 1, 12), 8 * MiB), 0);
    ASSERT_GT(t.spawn(ctr_path("burstable", 2, 21), 48 * MiB), 0);
    ASSERT_GT(t.spawn(ctr_path("besteffort", 3, 31), 0, 96 * MiB, disk.path()), 0);

    CgroupMonitor m;
    Status configured = m.configure(settings_for(t, logs));
    ASSERT_TRUE(configured) << configured.error().message;
    EXPECT_EQ(m.hierarchy().version, CgroupVersion::V1);
    ASSERT_TRUE(m.kubernetes());
    m.refresh(std::chrono::seconds(1));
    HeaviestReport r = m.report(5);
    ASSERT_EQ(r.ranked, 3u);
    const CgroupInfo& top = r.top[0];
    EXPECT_EQ(top.pod_uid, pod_uid(2));
    EXPECT_EQ(top.pod_namespace, "default");
    EXPECT_EQ(top.pod_name, "bravo");
    EXPECT_EQ(top.qos, QosClass::Burstable);
    EXPECT_GE(top.working_set, 48 * MiB);
    EXPECT_LT(top.working_set, 60 * MiB);
    ASSERT_FALSE(r.containers.empty());
    EXPECT_EQ(r.containers[0].container_name, "hog");
    EXPECT_EQ(r.containers[0].container_id, container_id(21));

    // The decoy really has the largest usage; only its working set is small.
    const CgroupInfo* decoy = nullptr;
    for (const auto& p : r.top)
        if (p.pod_uid == pod_uid(3)) decoy = &p;
    ASSERT_NE(decoy, nullptr);
    EXPECT_GT(decoy->usage, top.usage) << "the page cache was not charged to the decoy";
    EXPECT_LT(decoy->working_set, 16 * MiB);
    EXPECT_EQ(r.top[1].pod_uid, pod_uid(1));  // 32 MiB
    auto alpha = m.containers(r.top[1]);
    ASSERT_EQ(alpha.size(), 2u);
    EXPECT_EQ(alpha[0].container_name, "worker");
    EXPECT_EQ(alpha[1].container_name, "helper");
}

TEST(RealCgroups, VanishedCgroupIsSkippedSilently) {
    REQUIRE_REAL_CGROUPS();
    TempDir tmp;
    RealCgroupTree t;
    FakePodLogs logs(tmp / "log");
    t.make(pod_path("besteffort", 1));
    t.make(pod_path("besteffort", 2));
    CgroupMonitor m;
    auto s = settings_for(t, logs);
    s.structure_interval = std::chrono::hours(1);
    ASSERT_TRUE(m.configure(s));
    m.refresh(std::chrono::seconds(1));
    ASSERT_EQ(m.ranked().size(), 2u);
    // Remove one and create another: the link count is unchanged, so only the
    // kept fds notice (ENODEV), and the same refresh re-lists (issue 17: not
    // one calm refresh later, with the periodic re-listing now at 60 s).
    ASSERT_TRUE(t.remove(pod_path("besteffort", 2)));
    t.make(pod_path("besteffort", 3));
    auto st = m.refresh(std::chrono::seconds(1));
    EXPECT_TRUE(st.restructured);
    EXPECT_EQ(st.vanished, 1u);
    EXPECT_EQ(st.errors, 0u);
    auto r = m.ranked();
    ASSERT_EQ(r.size(), 2u);
    std::vector<std::string> uids{r[0].pod_uid, r[1].pod_uid};
    std::sort(uids.begin(), uids.end());
    std::vector<std::string> want{pod_uid(1), pod_uid(3)};
    std::sort(want.begin(), want.end());
    EXPECT_EQ(uids, want);
}

TEST(RealCgroups, CgroupsRemovedMidScanInALoop) {
    REQUIRE_REAL_CGROUPS();
    TempDir tmp;
    RealCgroupTree t;
    FakePodLogs logs(tmp / "log");
    t.make("kubepods/besteffort");
    t.make("kubepods/burstable");
    for (unsigned i = 0; i < 20; ++i) t.make(ctr_path("besteffort", i, i));
    auto open_fds = [] {
        size_t n = 0;
        DIR* d = ::opendir("/proc/self/fd");
        while (d && ::readdir(d)) ++n;
        if (d) ::closedir(d);
        return n;
    };
    const size_t fds_before = open_fds();
    auto m_holder = std::make_unique<CgroupMonitor>();
    CgroupMonitor& m = *m_holder;
    ASSERT_TRUE(m.configure(settings_for(t, logs)));
    std::atomic<bool> stop{false};
    std::atomic<unsigned> churns{0};
    // Pods come and go while the scans run.
    std::thread churn([&] {
        unsigned k = 0;
        while (!stop) {
            unsigned i = k % 40;
            const std::string qos = i % 2 ? "burstable" : "besteffort";
            t.make(ctr_path(qos, 100 + i, 100 + i));
            if (k >= 10) {
                unsigned j = (k - 10) % 40;
                const std::string q2 = j % 2 ? "burstable" : "besteffort";
                t.remove(ctr_path(q2, 100 + j, 100 + j));
                t.remove(pod_path(q2, 100 + j));
            }
            if (k % 3 == 0) {  // and some of the long-lived ones too
                unsigned j = k % 20;
                t.remove(ctr_path("besteffort", j, j));
                t.remove(pod_path("besteffort", j));
                t.make(ctr_path("besteffort", j, j));
            }
            ++k;
            ++churns;
        }
    });
    size_t scans = 0, vanished = 0;
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
    while (std::chrono::steady_clock::now() < end) {
        auto st = m.refresh(std::chrono::milliseconds(scans % 2 ? 1 : 50));
        vanished += st.vanished;
        HeaviestReport r = m.report(5);
        EXPECT_TRUE(r.valid);
        if (!r.top.empty()) m.containers(r.top.back());
        ++scans;
    }
    stop = true;
    churn.join();
    EXPECT_GT(scans, 50u);
    EXPECT_GT(churns.load(), 50u);
    // Settled: the ranking matches what is there now.
    m.refresh(std::chrono::seconds(1));
    m.refresh(std::chrono::seconds(1));
    size_t present = 0;
    for (const char* q : {"besteffort", "burstable"}) {
        DIR* d = ::opendir((t.parent() + "/kubepods/" + q).c_str());
        ASSERT_NE(d, nullptr);
        while (dirent* e = ::readdir(d))
            if (e->d_type == DT_DIR && std::string(e->d_name).rfind("pod", 0) == 0) ++present;
        ::closedir(d);
    }
    EXPECT_EQ(m.ranked().size(), present);
    // Every cgroup that came and went had its fds closed.
    EXPECT_LE(open_fds(), fds_before + 3 * present + 16);
    m_holder.reset();
    EXPECT_EQ(open_fds(), fds_before);
    std::printf("[ info ] %zu scans while %u pod changes; %zu vanished mid-scan\n", scans,
                churns.load(), vanished);
}

TEST(RealCgroups, KernelMemcgOomKillIsAttributedByTheKmsgReader) {
    REQUIRE_REAL_CGROUPS();
    KmsgReader kmsg;
    Status st = kmsg.open("/dev/kmsg");
    if (!st) GTEST_SKIP() << "cannot read /dev/kmsg: " << st.error().message;
    TempDir tmp;
    RealCgroupTree t;
    FakePodLogs logs(tmp / "log");
    const std::string ctr = ctr_path("besteffort", 5, 55);
    t.make(ctr);
    t.set_limit(ctr, 16 * MiB);
    logs.pod("batch", "greedy", pod_uid(5));
    logs.container("batch", "greedy", pod_uid(5), "eater", container_id(55));

    pid_t pid = t.spawn_doomed(ctr, 64 * MiB);  // more than its limit: the kernel kills it
    int status = 0;
    ASSERT_TRUE(t.reap(pid, &status)) << "the child was not OOM-killed (limit not enforced?)";
    ASSERT_TRUE(WIFSIGNALED(status));
    EXPECT_EQ(WTERMSIG(status), SIGKILL);

    CgroupMonitor m;
    ASSERT_TRUE(m.configure(settings_for(t, logs)));
    OomReportAssembler a;
    std::vector<KernelOomEvent> events;
    const KernelOomEvent* ours = nullptr;
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!ours && std::chrono::steady_clock::now() < end) {
        pollfd p{kmsg.poll_fd(), POLLIN, 0};
        ::poll(&p, 1, 100);
        (void)kmsg.read_available([&](const KmsgRecord& r) { a.feed(r, events); });
        for (const auto& e : events)
            if (e.type == KernelOomEvent::Type::Kill && e.pid == pid) ours = &e;
    }
    ASSERT_NE(ours, nullptr) << "no oom-kill report for pid " << pid << " on /dev/kmsg";
    EXPECT_TRUE(ours->memcg_oom);
    EXPECT_EQ(ours->constraint, "CONSTRAINT_MEMCG");
    EXPECT_EQ(ours->task_memcg, t.kernel_path(ctr));
    EXPECT_GT(ours->rss_bytes, 8 * MiB);
    OomKill kill = attribute_oom_kill(*ours, m);
    const CgroupRef& info = kill.cgroup;
    EXPECT_EQ(info.pod_uid, pod_uid(5));
    EXPECT_EQ(info.pod_namespace, "batch");
    EXPECT_EQ(info.pod_name, "greedy");
    EXPECT_EQ(info.container_id, container_id(55));
    EXPECT_EQ(info.container_name, "eater");
    EXPECT_EQ(info.qos, "BestEffort");
    EXPECT_TRUE(kill.memcg);
}

TEST(RealCgroups, KillContainerCgroupKillsExactlyItsProcesses) {
    REQUIRE_REAL_CGROUPS();
    TempDir tmp;
    RealCgroupTree t;
    FakePodLogs logs(tmp / "log");
    const std::string target = ctr_path("besteffort", 1, 11);
    const std::string sibling = ctr_path("besteffort", 1, 12);
    const std::string other = ctr_path("burstable", 2, 21);
    t.make(target + "/nested");  // a runtime's own sub-cgroup belongs to the container
    t.make(sibling);
    t.make(other);
    pid_t a = t.spawn(target, 2 * MiB);
    pid_t b = t.spawn(target, 2 * MiB);
    pid_t n = t.spawn(target + "/nested", 1 * MiB);
    pid_t s = t.spawn(sibling, 1 * MiB);
    pid_t o = t.spawn(other, 1 * MiB);
    ASSERT_TRUE(a > 0 && b > 0 && n > 0 && s > 0 && o > 0);

    CgroupMonitor m;
    ASSERT_TRUE(m.configure(settings_for(t, logs)));
    m.refresh(std::chrono::seconds(1));
    CgroupInfo c;
    c.path = "/" + target;
    c.kind = CgroupKind::Container;
    KillOutcome out = kill_container_cgroup(m, c);
    EXPECT_TRUE(out.ok()) << why(out);
    EXPECT_EQ(out.method, "SIGKILL to cgroup.procs");
    EXPECT_GE(out.signalled, 3u);
    // Through pidfds (this kernel has pidfd_open): no note about signalling by pid.
    EXPECT_EQ(out.note, "") << out.note;
    for (pid_t p : {a, b, n}) {
        int st = 0;
        ASSERT_TRUE(t.reap(p, &st)) << p;
        EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << p;
    }
    EXPECT_TRUE(t.alive(s));
    EXPECT_TRUE(t.alive(o));
    EXPECT_EQ(readFile(t.parent() + "/" + target + "/cgroup.procs"), "");
    std::printf("[ info ] kill-cgroup: %zu SIGKILLs in %zu round(s), %lld us\n", out.signalled,
                out.rounds,
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::microseconds>(out.elapsed).count()));
}

// cgroup v2's cgroup.kill, for real: this machine's v2 hierarchy
// (/sys/fs/cgroup/unified) has no memory controller, but cgroup.kill works there.
TEST(RealCgroups, CgroupKillOnV2KillsTheWholeSubtree) {
    const std::string unified = "/sys/fs/cgroup/unified";
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    if (::access((unified + "/cgroup.procs").c_str(), W_OK) != 0)
        GTEST_SKIP() << "no writable cgroup v2 hierarchy at " << unified;
    const std::string base = unified + "/oomguard-test-" + std::to_string(::getpid()) + "-kill";
    ASSERT_EQ(::mkdir(base.c_str(), 0755), 0) << std::strerror(errno);
    if (::access((base + "/cgroup.kill").c_str(), F_OK) != 0) {
        ::rmdir(base.c_str());
        GTEST_SKIP() << "kernel without cgroup.kill (before 5.14)";
    }
    ::mkdir((base + "/victim").c_str(), 0755);
    ::mkdir((base + "/victim/sub").c_str(), 0755);
    ::mkdir((base + "/bystander").c_str(), 0755);
    auto spawn_in = [](const std::string& cg) {
        pid_t p = ::fork();
        if (p == 0) {
            std::string pid = std::to_string(::getpid());
            int fd = ::open((cg + "/cgroup.procs").c_str(), O_WRONLY);
            if (fd < 0 || ::write(fd, pid.data(), pid.size()) < 0) _exit(3);
            ::close(fd);
            for (;;) ::pause();
        }
        return p;
    };
    pid_t a = spawn_in(base + "/victim"), b = spawn_in(base + "/victim/sub"),
          c = spawn_in(base + "/bystander");
    auto wait_in = [](const std::string& cg, size_t n) {
        for (int i = 0; i < 500; ++i) {
            std::string procs = readFile(cg + "/cgroup.procs");
            if (static_cast<size_t>(std::count(procs.begin(), procs.end(), '\n')) == n) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        return false;
    };
    EXPECT_TRUE(wait_in(base + "/victim", 1) && wait_in(base + "/victim/sub", 1) &&
                wait_in(base + "/bystander", 1));
    int dir = ::open((base + "/victim").c_str(), O_RDONLY | O_DIRECTORY);
    KillOutcome o = kill_cgroup_at(dir, CgroupVersion::V2, "victim");
    ::close(dir);
    EXPECT_TRUE(o.ok()) << why(o);
    EXPECT_EQ(o.method, "cgroup.kill");
    EXPECT_EQ(o.signalled, 0u);  // the kernel did it
    for (pid_t p : {a, b}) {
        int st = 0;
        EXPECT_EQ(::waitpid(p, &st, 0), p);
        EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    }
    int st = 0;
    EXPECT_EQ(::waitpid(c, &st, WNOHANG), 0) << "the bystander died";
    ::kill(c, SIGKILL);
    ::waitpid(c, &st, 0);
    for (const char* d : {"/victim/sub", "/victim", "/bystander", ""})
        for (int i = 0; i < 100 && ::rmdir((base + d).c_str()) != 0 && errno == EBUSY; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
}
