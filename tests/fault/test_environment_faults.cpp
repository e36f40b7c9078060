// Fault injection with the real binary, the environment: no or a stalled
// journald socket, a notify socket nobody reads, no /proc/pressure, an unreadable
// kmsg, and the rig's own cgroup root and kmsg. ~3 s, some root (a private /run).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <optional>
#include <thread>

#include "fault_rig.hpp"

using namespace oomguard::test;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------
// The environment: journald, /proc/pressure, /dev/kmsg

namespace {

// An empty tmpfs over /run in the test's private mount namespace: the daemon
// sees no journald socket, or the one the test binds there.
struct PrivateRun {
    std::optional<TmpfsMount> mnt;
    std::string skip;
    PrivateRun() {
        if (!is_root()) {
            skip = "needs root to mount a tmpfs over /run";
            return;
        }
        if (!private_mount_namespace(skip)) return;
        mnt.emplace("/run");
        if (!mnt->mounted()) {
            skip = "cannot mount a tmpfs over /run: " + mnt->error();
            return;
        }
        ::mkdir("/run/systemd", 0755);
        ::mkdir("/run/systemd/journal", 0755);
    }
};

// A datagram socket at journald's address; reads only when asked to.
class FakeJournald {
public:
    FakeJournald() {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strcpy(a.sun_path, "/run/systemd/journal/socket");
        bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    }
    ~FakeJournald() { ::close(fd_); }
    bool bound() const { return bound_; }
    std::vector<std::string> receive() {
        std::vector<std::string> out;
        char buf[65536];
        for (ssize_t n; (n = ::recv(fd_, buf, sizeof buf, 0)) > 0;)
            out.emplace_back(buf, static_cast<size_t>(n));
        return out;
    }

private:
    int fd_ = -1;
    bool bound_ = false;
};

}  // namespace

TEST(EnvironmentFault, NoJournaldFallsBackToStderr) {
    PrivateRun run;
    if (!run.skip.empty()) GTEST_SKIP() << run.skip;
    struct stat st;
    ASSERT_NE(::stat("/run/systemd/journal/socket", &st), 0);
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    write_file(c.trigger, "");
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(c.render(), {"--log-target=journal"})) << r.daemon.log();
    // The stderr form: "<priority>event: message FIELD=value".
    EXPECT_TRUE(r.daemon.wait_log("<5>start: oomguard", 2s)) << r.daemon.log();
    r.proc.set_available(400 * MiB);
    EXPECT_TRUE(wait_f_count(c.trigger, 1, 2s)) << r.daemon.log();
    EXPECT_TRUE(
        r.daemon.wait_log("<4>trigger: MemAvailable 400 MiB below 500 MiB: asked the kernel OOM "
                          "killer to kill one task",
                          2s))
        << r.daemon.log();
    r.proc.set_available(2048 * MiB);
    EXPECT_TRUE(r.daemon.wait_log(kRecoveredEntry, 2s)) << r.daemon.log();
}

TEST(EnvironmentFault, JournaldGetsStructuredEntries) {
    PrivateRun run;
    if (!run.skip.empty()) GTEST_SKIP() << run.skip;
    FakeJournald journald;
    ASSERT_TRUE(journald.bound()) << std::strerror(errno);
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    write_file(c.trigger, "");
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(c.render(), {"--log-target=journal"})) << r.daemon.log();
    r.proc.set_available(400 * MiB);
    ASSERT_TRUE(wait_f_count(c.trigger, 1, 2s)) << r.daemon.log();
    std::string trigger_entry;
    auto deadline = Clock::now() + 2s;
    while (trigger_entry.empty() && Clock::now() < deadline) {
        for (auto& e : journald.receive())
            if (e.find("MESSAGE_ID=70f9fe7ab100420db4a8c0f2db5f4ab2\n") != std::string::npos)
                trigger_entry = e;
        std::this_thread::sleep_for(10ms);
    }
    ASSERT_FALSE(trigger_entry.empty()) << "no trigger entry reached the journald socket\n"
                                        << r.daemon.log();
    for (const char* field :
         {"MESSAGE=MemAvailable 400 MiB below 500 MiB: asked the kernel OOM killer", "PRIORITY=4\n",
          "SYSLOG_IDENTIFIER=oomguard\n", "OOMGUARD_EVENT=trigger\n",
          "OOMGUARD_THRESHOLD_BYTES=524288000\n", "OOMGUARD_MEM_AVAILABLE_BYTES=419430400\n"})
        EXPECT_NE(trigger_entry.find(field), std::string::npos) << field << " missing in\n"
                                                                << trigger_entry;
    EXPECT_EQ(r.daemon.log_count("trigger:"), 0u)
        << "entries journald took must not also go to stderr";
}

TEST(EnvironmentFault, StalledJournaldDoesNotHoldUpTheTrigger) {
    // journald that never reads: its queue fills after net.unix.max_dgram_qlen
    // entries (10 by default). A blocking send would stop the loop right there,
    // before the next trigger write.
    PrivateRun run;
    if (!run.skip.empty()) GTEST_SKIP() << run.skip;
    FakeJournald journald;
    ASSERT_TRUE(journald.bound()) << std::strerror(errno);
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    write_file(c.trigger, "");
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(c.render(), {"--log-target=journal"})) << r.daemon.log();
    r.proc.set_available(400 * MiB);
    // Every repeat (100ms) logs an entry: 30 triggers are far past any queue.
    EXPECT_TRUE(wait_f_count(c.trigger, 30, 6s))
        << "triggers stopped at " << f_count(c.trigger) << "\n"
        << r.daemon.log();
    // What journald had no room for went to stderr instead.
    EXPECT_GE(r.daemon.log_count("trigger: MemAvailable"), 1u) << r.daemon.log();
    r.daemon.signal(SIGTERM);
    EXPECT_EQ(r.daemon.wait_exit(3s), 0);
}

TEST(EnvironmentFault, NotifySocketNobodyReadsDoesNotBlock) {
    // PID 1 busy (or stuck) under memory pressure: its notify queue fills. The
    // test never reads the notify socket after READY; reloads send 2 messages each.
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    write_file(c.trigger, "");
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(c.render(), {}, {})) << r.daemon.log();
    for (int i = 0; i < 30; ++i) {
        r.daemon.signal(SIGHUP);
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_TRUE(r.daemon.wait_log("reloaded", 2s, 12)) << r.daemon.log();
    r.proc.set_available(400 * MiB);
    EXPECT_TRUE(wait_f_count(c.trigger, 3, 2s)) << r.daemon.log();
    r.daemon.signal(SIGTERM);
    EXPECT_EQ(r.daemon.wait_exit(3s), 0) << "blocked in a notify send?\n" << r.daemon.log();
}

TEST(EnvironmentFault, NoProcPressurePollsOnly) {
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    c.poll = "psi = true";
    write_file(c.trigger, "");
    struct stat st;
    ASSERT_NE(::stat((r.proc.dir() + "/pressure").c_str(), &st), 0)
        << "the fake proc root has no pressure dir";
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(c.render())) << r.daemon.log();
    EXPECT_TRUE(r.daemon.wait_log("PSI trigger unavailable, polling only", 2s)) << r.daemon.log();
    EXPECT_TRUE(r.daemon.wait_log("polling only", 2s, 2)) << "the start message says so\n"
                                                          << r.daemon.log();
    r.proc.set_available(400 * MiB);
    EXPECT_TRUE(wait_f_count(c.trigger, 1, 2s)) << r.daemon.log();
}

// [paths] kmsg is read by the kernel-OOM reporter (src/cgroup/oom_reporter.cpp).
// When it cannot be read the daemon says so once, names the reason, and goes on
// monitoring: the trigger fires, and fires again after memory comes back and
// goes low once more.

namespace {

const char* kKmsgDown = "cannot read the kernel's OOM reports, victims will not be named: ";

// Starts the rig with [paths] kmsg = path, checks the warning (with `reason`),
// then two triggers: one episode, recovery, and the next episode.
void expect_monitoring_without_kmsg(FaultRig& r, const std::string& kmsg, const std::string& reason,
                                    const std::vector<std::string>& wrapper = {}) {
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    c.action = "repeat_after = \"1h\"";  // a second 'f' only from a second episode
    c.paths = "kmsg = \"" + kmsg + "\"";
    write_file(c.trigger, "");
    if (!wrapper.empty()) ::chmod(c.trigger.c_str(), 0666);
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(c.render(), {}, wrapper)) << r.daemon.log();
    ASSERT_TRUE(r.daemon.wait_log(kKmsgDown, 2s)) << r.daemon.log();
    const std::string log = r.daemon.log();
    const std::string line =
        log.substr(log.find(kKmsgDown), log.find('\n', log.find(kKmsgDown)) - log.find(kKmsgDown));
    EXPECT_NE(line.find(kmsg), std::string::npos) << line;
    EXPECT_NE(line.find(reason), std::string::npos) << line;
    r.proc.set_available(400 * MiB);
    EXPECT_TRUE(wait_f_count(c.trigger, 1, 2s)) << r.daemon.log();
    r.proc.set_available(2048 * MiB);
    EXPECT_TRUE(r.daemon.wait_log(kRecoveredEntry, 2s)) << r.daemon.log();
    r.proc.set_available(400 * MiB);
    EXPECT_TRUE(wait_f_count(c.trigger, 2, 2s)) << r.daemon.log();
    EXPECT_TRUE(r.daemon.running()) << r.daemon.log();
    EXPECT_EQ(r.daemon.log_count(kKmsgDown), 1u) << r.daemon.log();
}

// A memcg OOM kill in kmsg format, as the kernel writes it.
std::string memcg_oom_report(int pid) {
    const std::string p = std::to_string(pid);
    return "6,100,2000000,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,"
           "mems_allowed=0,oom_memcg=/fault-test,task_memcg=/fault-test,task=hog,pid=" +
           p + ",uid=0\n3,101,2000100,-;Memory cgroup out of memory: Killed process " + p +
           " (hog) total-vm:1000kB, anon-rss:900kB, file-rss:0kB, shmem-rss:0kB, UID:0 "
           "pgtables:10kB oom_score_adj:0\n";
}

}  // namespace

TEST(EnvironmentFault, KmsgMissingStillMonitorsThenReadsItAfterAReload) {
    FaultRig r;
    const std::string kmsg = r.dir.file("no-such-kmsg");
    expect_monitoring_without_kmsg(r, kmsg, "No such file or directory");
    if (HasFatalFailure()) return;
    // The file appears; a reload opens it, and the reader reports what it gets.
    write_file(kmsg, "");
    r.daemon.signal(SIGHUP);
    bool reported = false;
    for (int i = 0; i < 20 && !reported; ++i) {
        int fd = ::open(kmsg.c_str(), O_WRONLY | O_APPEND);
        ASSERT_GE(fd, 0);
        const std::string rep = memcg_oom_report(4000 + i);
        ASSERT_EQ(::write(fd, rep.data(), rep.size()), static_cast<ssize_t>(rep.size()));
        ::close(fd);
        reported = r.daemon.wait_log("the kernel OOM-killed pid ", 250ms);
    }
    EXPECT_TRUE(reported) << r.daemon.log();
    EXPECT_TRUE(r.daemon.running());
}

TEST(EnvironmentFault, KmsgIsADirectoryStillMonitors) {
    FaultRig r;
    ::mkdir(r.dir.file("kmsg-dir").c_str(), 0755);
    expect_monitoring_without_kmsg(r, r.dir.file("kmsg-dir"),
                                   "not a character device, FIFO or file");
}

TEST(EnvironmentFault, KmsgUnreadableByAnUnprivilegedDaemon) {
    if (!is_root()) GTEST_SKIP() << "needs root to run the daemon as nobody";
    if (::access("/usr/bin/setpriv", X_OK) != 0)
        GTEST_SKIP() << "setpriv (util-linux) is not installed";
    // The premise: nobody cannot open /dev/kmsg here (mode 0600, or dmesg_restrict).
    pid_t child = ::fork();
    if (child == 0) {
        if (::setgid(65534) != 0 || ::setuid(65534) != 0) _exit(2);
        _exit(::open("/dev/kmsg", O_RDONLY | O_NONBLOCK) < 0 ? 0 : 1);
    }
    int st = 0;
    ::waitpid(child, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) == 2) GTEST_SKIP() << "cannot become nobody";
    if (WEXITSTATUS(st) == 1) GTEST_SKIP() << "nobody can read /dev/kmsg on this machine";
    FaultRig r;
    r.open_to_others();
    expect_monitoring_without_kmsg(r, "/dev/kmsg", "cannot open kmsg /dev/kmsg", kAsNobody);
}

// Hermetic rig (issue 11): the fault rig's daemon sees the rig's cgroup root,
// kmsg file, lock and (absent) system bus, never the host's.
TEST(HermeticFaultRig, DaemonNamesTheRigsCgroupRootAndReadsTheRigsKmsg) {
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    write_file(c.trigger, "");
    ASSERT_TRUE(r.start(c.render())) << r.daemon.log();
    EXPECT_TRUE(r.daemon.wait_log("no kubepods cgroup under " + r.paths.cgroup_root, 2s))
        << r.daemon.log();
    for (const char* host : {"/sys/fs/cgroup", "/dev/kmsg", "/run/"})
        EXPECT_EQ(r.daemon.log().find(host), std::string::npos) << host << "\n" << r.daemon.log();
    int fd = ::open(r.paths.kmsg.c_str(), O_WRONLY | O_APPEND);
    ASSERT_GE(fd, 0);
    const std::string rep = memcg_oom_report(4321);
    ASSERT_EQ(::write(fd, rep.data(), rep.size()), static_cast<ssize_t>(rep.size()));
    ::close(fd);
    EXPECT_TRUE(r.daemon.wait_log("the kernel OOM-killed pid 4321", 2s)) << r.daemon.log();
}
