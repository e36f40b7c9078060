// Fault injection: cgroups created and removed at a high rate while the daemon
// scans. A real v1 memory cgroup tree (a unique test parent under
// /sys/fs/cgroup/memory, the daemon's [paths] cgroup) with pods and containers
// mkdir/rmdir'ed in a tight loop by a test thread, while the real binary, whose
// fake /proc is below the threshold, triggers (to a file of the test's own)
// and scans for the heaviest cgroup every repeat_after. The daemon must not
// crash, must keep triggering, and must not leak fds (/proc/<pid>/fd).
#include <dirent.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "fixture.hpp"
#include "real_cgroup.hpp"

using namespace oomguard;
using namespace oomguard::test;
using namespace std::chrono_literals;

namespace {

size_t fd_count(pid_t pid) {
    DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
    if (!d) return 0;
    size_t n = 0;
    while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
    return n;
}

size_t f_count(const std::string& path) {
    size_t n = 0;
    for (char c : readFile(path)) n += c == 'f';
    return n;
}

std::string ctr(const std::string& qos, unsigned pod, unsigned c) {
    return "kubepods/" + qos + "/pod" + pod_uid(pod) + "/" + container_id(c);
}

}  // namespace

TEST(CgroupChurn, PodsComingAndGoingWhileTheDaemonScans) {
    const std::string why = real_cgroups_unavailable();
    if (!why.empty()) GTEST_SKIP() << "real v1 memory cgroups: " << why;

    TempDir tmp;
    FakeProc proc(tmp / "proc");
    proc.meminfo(8ull << 30, 1ull << 30);  // 1 GiB available, threshold 2 GiB: triggers
    makeFile(tmp / "kmsg", "");
    makeFile(tmp / "trigger", "");
    // Declared before the churn thread: its destructor (cgroups removed deepest
    // first, the child killed) runs after the thread is joined, also on failure.
    RealCgroupTree t;
    t.make(ctr("burstable", 1, 1));
    t.make("kubepods/besteffort");
    ASSERT_GT(t.spawn(ctr("burstable", 1, 1), 8 * MiB), 0) << "the steady pod's child";

    const std::string config = tmp / "oomguard.toml";
    makeFile(config,
             "[memory]\nmin_available = \"2GiB\"\n"
             "[action]\nsysrq_trigger = \"" +
                 (tmp / "trigger") +
                 "\"\nrepeat_after = \"100ms\"\n"
                 "[poll]\npsi = false\nmax_interval = \"50ms\"\n"
                 "[paths]\nproc = \"" +
                 proc.dir() + "\"\ncgroup = \"" + t.parent() + "\"\nkmsg = \"" + (tmp / "kmsg") +
                 "\"\nlock = \"" + (tmp / "lock") +
                 "\"\n"
                 "[kubernetes]\npod_logs_dir = \"" +
                 (tmp / "no-pod-logs") + "\"\n");
    // The config names the real tree, kmsg and lock; DaemonProcess adds a dead
    // system bus address (hermetic by default, support/process.hpp).
    DaemonProcess d({"--config", config, "--log-target=stderr", "--no-mlock"});
    ASSERT_GT(d.pid(), 0);
    // The first trigger names the steady pod: the scan sees the real tree.
    const std::string first = d.wait_event("trigger", "OOMGUARD_CGROUP=");
    ASSERT_FALSE(first.empty()) << d.log();
    EXPECT_EQ(field(first, "OOMGUARD_CGROUP"), "/kubepods/burstable/pod" + pod_uid(1)) << first;
    // Baseline after a few triggers (everything the daemon keeps open is open).
    for (int i = 0; i < 3; ++i) d.wait_entry([](const std::string&) { return false; }, 100ms);
    const size_t fds_before = fd_count(d.pid());
    ASSERT_GT(fds_before, 0u);
    const size_t triggers_before = f_count(tmp / "trigger");

    std::atomic<bool> stop{false};
    std::atomic<size_t> created{0}, removed{0}, failed_rmdir{0};
    std::jthread churn([&] {
        // A window of up to 16 live pods of 2 containers each, in both QoS
        // levels and Guaranteed: each round makes one pod and removes the oldest.
        const char* qos[] = {"burstable", "besteffort", ""};
        auto pod = [&](unsigned n) {
            std::string q = qos[n % 3];
            return "kubepods/" + (q.empty() ? "" : q + "/") + "pod" + pod_uid(100 + n % 4000);
        };
        unsigned next = 0, oldest = 0;
        auto remove_pod = [&](unsigned n) {
            for (unsigned c = 0; c < 2; ++c)
                if (!t.remove(pod(n) + "/" + container_id(1000 + 2 * n + c))) ++failed_rmdir;
            if (!t.remove(pod(n))) ++failed_rmdir;
            removed += 3;
        };
        while (!stop) {
            for (unsigned c = 0; c < 2; ++c)
                t.make(pod(next) + "/" + container_id(1000 + 2 * next + c));
            created += 3;
            ++next;
            if (next - oldest > 16) remove_pod(oldest++);
        }
        while (oldest < next) remove_pod(oldest++);
    });

    // Churn for 4 s, draining the daemon's output meanwhile.
    const auto end = std::chrono::steady_clock::now() + 4s;
    while (std::chrono::steady_clock::now() < end)
        d.wait_entry([](const std::string&) { return false; }, 50ms);
    stop = true;
    churn.join();
    const size_t triggers_during = f_count(tmp / "trigger") - triggers_before;
    std::printf(
        "churn: %zu cgroups created, %zu removed (%zu rmdir failures), %zu triggers in 4 s\n",
        created.load(), removed.load(), failed_rmdir.load(), triggers_during);
    EXPECT_GT(created.load(), 300u) << "the churn was too slow to mean anything";
    EXPECT_EQ(failed_rmdir.load(), 0u);
    // repeat_after 100ms: ~40 in 4 s; a stuck scan would give a handful.
    EXPECT_GE(triggers_during, 15u) << d.log();

    // After the churn: still triggering, still naming the steady pod, no fd growth.
    const size_t after_churn = f_count(tmp / "trigger");
    // Vanished cgroups are dropped by the background refresh (every second below
    // the warning level), not on the trigger path: wait for one.
    for (int i = 0; i < 15; ++i) d.wait_entry([](const std::string&) { return false; }, 100ms);
    EXPECT_GT(f_count(tmp / "trigger"), after_churn) << d.log();
    const size_t fds_after = fd_count(d.pid());
    std::printf("daemon fds: %zu before the churn, %zu after\n", fds_before, fds_after);
    EXPECT_LE(fds_after, fds_before + 2) << "fd leak while cgroups came and went";
    const std::string last =
        d.wait_event("trigger", "OOMGUARD_CGROUP=/kubepods/burstable/pod" + pod_uid(1), 3s);
    EXPECT_FALSE(last.empty()) << d.log();
    EXPECT_EQ(d.log().find("Sanitizer"), std::string::npos) << d.log();
    EXPECT_EQ(d.stop(), 0) << d.log();
}
