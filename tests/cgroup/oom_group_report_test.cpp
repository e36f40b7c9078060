// The kernel's report of a memory.oom.group kill, as kernel 6.1 prints it (seen
// on the lab VM, tests/node): the first victim, the group line, then every task
// of the container, the first victim among them again. oomguard must report one
// kill of the whole container, with all its tasks and all the memory that came
// back, and the kill latency in the kernel's own clock.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "daemon_cgroup_rig.hpp"

using namespace oomguard;
using namespace oomguard::test;

namespace {

// The cgroup daemon tests' fake node with one BestEffort pod, and a config of
// its own (no mode key, no D-Bus, a 1 s scan budget).
struct OneBestEffortPod : daemon_cgroup_rig::FakeNode {
    KubeLayout L{CgroupDriver::Systemd, Runtime::Containerd};
    std::string pod_dir = L.pod_dir(QosClass::BestEffort, pod_uid(7));
    std::string container_cg = "/" + pod_dir + "/" + L.container_name(container_id(70));

    OneBestEffortPod() : FakeNode(CgroupVersion::V2) {  // below the 2 GiB threshold
        fs.cgroup(L.kubepods(), 0);
        fs.cgroup(L.qos_dir(QosClass::BestEffort), 0);
        fs.cgroup(pod_dir, 1200 * MiB, 0);
        fs.cgroup(pod_dir + "/" + L.container_name(container_id(70)), 1200 * MiB, 0);
        logs.pod("batch", "leaky-job", pod_uid(7));
        logs.container("batch", "leaky-job", pod_uid(7), "leaker", container_id(70));
    }
    std::vector<std::string> args() const {
        const std::string path = tmp / "oomguard.toml";
        makeFile(path,
                 "[memory]\nmin_available = \"2GiB\"\n[action]\nsysrq_trigger = \"" +
                     paths.trigger +
                     "\"\nrepeat_after = \"1h\"\n[poll]\npsi = false\nmax_interval = \"50ms\"\n"
                     "[paths]\nproc = \"" +
                     proc.dir() + "\"\ncgroup = \"" + fs.root() + "\"\nkmsg = \"" + paths.kmsg +
                     "\"\n[kubernetes]\npod_logs_dir = \"" + logs.pods_dir() +
                     "\"\nscan_budget = \"1s\"\n");
        return {"--config", path, "--log-target=stderr", "--no-mlock", "--no-dbus"};
    }
    void kernel_says(const std::string& records) const {
        int fd = ::open(paths.kmsg.c_str(), O_WRONLY | O_APPEND);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::write(fd, records.data(), records.size()),
                  static_cast<ssize_t>(records.size()));
        ::close(fd);
    }
};

std::string killed(const char* prefix, int pid, const char* comm, uint64_t anon_kb) {
    return std::string(prefix) + ": Killed process " + std::to_string(pid) + " (" + comm +
           ") total-vm:2000000kB, anon-rss:" + std::to_string(anon_kb) +
           "kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:2000kB oom_score_adj:1000\n";
}

// sysrq f, the kernel's choice of the leaker (pid 501) in container `cg`, and
// the start of its memory.oom.group kill: the lines before the members'.
std::string sysrq_group_kill(const std::string& cg) {
    return "6,100,5000000,-;sysrq: Manual OOM execution\n"
           "4,101,5000400,-;oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,"
           "mems_allowed=0,global_oom,task_memcg=" +
           cg + ",task=leaker,pid=501,uid=0\n3,102,5000410,-;" +
           killed("Out of memory", 501, "leaker", 1000000) + "6,103,5000420,-;Tasks in " + cg +
           " are going to be killed due to memory.oom.group set\n";
}

size_t count(const std::string& text, const std::string& needle) {
    size_t n = 0;
    for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
    return n;
}

}  // namespace

TEST(OomGroupReport, SysrqKillOfAGroupIsOneVictimWithAllItsTasksAndMemory) {
    OneBestEffortPod n;
    DaemonProcess d(n.args());
    ASSERT_FALSE(d.wait_event("trigger", "OOMGUARD_ACTION=sysrq").empty()) << d.log();
    const std::string cg = n.container_cg;
    n.kernel_says(sysrq_group_kill(cg) + "3,104,5000430,-;" +
                  killed("Out of memory", 501, "leaker", 1000000) + "3,105,5000440,-;" +
                  killed("Out of memory", 502, "sh", 100000) + "3,106,5000450,-;" +
                  killed("Out of memory", 503, "sleep", 100));
    // The container's memory comes back over a while, not at the first line.
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    n.proc.meminfo(8ull << 30, (1ull << 30) + 300 * MiB);
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    n.proc.meminfo(8ull << 30, (1ull << 30) + 1100 * MiB);
    std::string v = d.wait_event("victim", "OOMGUARD_VICTIM_PID=501", std::chrono::seconds(5));
    ASSERT_FALSE(v.empty()) << d.log();
    EXPECT_EQ(field(v, "OOMGUARD_KILLED_TASKS"), "3") << v;
    EXPECT_EQ(field(v, "OOMGUARD_POD_NAME"), "leaky-job");
    EXPECT_EQ(field(v, "OOMGUARD_CONTAINER_NAME"), "leaker");
    EXPECT_EQ(field(v, "OOMGUARD_REGAINED_BYTES"), std::to_string(1100 * MiB)) << v;
    EXPECT_EQ(field(v, "OOMGUARD_KILL_LATENCY_USEC"), "400") << v;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const std::string out = d.log();
    EXPECT_EQ(count(out, "<4>victim: "), 1u) << "one kill, one victim entry:\n" << out;
    EXPECT_EQ(d.stop(), 0);
}

// A task of the group that was dying already gets no Killed line, only "OOM
// victim <pid> (<comm>) is already exiting. Skip": it still counts (the node
// lab saw 2 of 3 tasks counted).
TEST(OomGroupReport, GroupTaskThatWasExitingAlreadyCounts) {
    OneBestEffortPod n;
    DaemonProcess d(n.args());
    ASSERT_FALSE(d.wait_event("trigger", "OOMGUARD_ACTION=sysrq").empty()) << d.log();
    const std::string cg = n.container_cg;
    n.kernel_says(
        sysrq_group_kill(cg) +
        "6,104,5000430,-;Out of memory: OOM victim 501 (leaker) is already exiting. Skip\n"
        "3,105,5000440,-;" +
        killed("Out of memory", 502, "sh", 100000) +
        "6,106,5000450,-;Out of memory: OOM victim 503 (sleep) is already exiting. Skip\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    n.proc.meminfo(8ull << 30, (1ull << 30) + 1100 * MiB);
    std::string v = d.wait_event("victim", "OOMGUARD_VICTIM_PID=501", std::chrono::seconds(5));
    ASSERT_FALSE(v.empty()) << d.log();
    EXPECT_EQ(field(v, "OOMGUARD_KILLED_TASKS"), "3") << v;
    EXPECT_EQ(field(v, "OOMGUARD_CONTAINER_NAME"), "leaker");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(count(d.log(), "<4>victim: "), 1u) << "one kill, one victim entry:\n" << d.log();
    EXPECT_EQ(d.stop(), 0);
}

TEST(OomGroupReport, MemcgGroupKillIsOneKernelOomEntry) {
    OneBestEffortPod n;
    n.proc.meminfo(8ull << 30, 6ull << 30);  // no node-wide shortage: a pod's own limit
    DaemonProcess d(n.args());
    ASSERT_FALSE(d.wait_event("start").empty()) << d.log();
    const std::string cg = n.container_cg;
    n.kernel_says(
        "4,201,7000000,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,"
        "mems_allowed=0,oom_memcg=" +
        cg + ",task_memcg=" + cg +
        ",task=leaker,pid=601,uid=0\n"
        "3,202,7000010,-;" +
        killed("Memory cgroup out of memory", 601, "leaker", 500000) + "6,203,7000020,-;Tasks in " +
        cg +
        " are going to be killed due to memory.oom.group set\n"
        "3,204,7000030,-;" +
        killed("Memory cgroup out of memory", 601, "leaker", 500000) + "3,205,7000040,-;" +
        killed("Memory cgroup out of memory", 602, "sh", 1000));
    ASSERT_FALSE(d.wait_event("kernel-oom", "OOMGUARD_VICTIM_PID=601").empty()) << d.log();
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    EXPECT_EQ(count(d.log(), "<5>kernel-oom: "), 1u) << d.log();
    EXPECT_EQ(d.stop(), 0);
}
