// The real oomguard binary, its life: start refusals, SIGHUP reloads (good and
// bad), SIGTERM, the sd_notify protocol and the hermetic rig (a bare runner:
// test_runner.cpp). ~3 s.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <thread>

#include "daemon_rig.hpp"

using namespace oomguard::test;
using namespace oomguard::test::daemon_rig;
using namespace std::chrono_literals;

TEST(Daemon, SighupWithBrokenConfigKeepsOldValues) {
    Rig r;
    r.proc.set_available(2048 * MiB);
    r.start(r.config("min_available = \"500MiB\""));
    r.write_config(r.config("min_available = 900") + "\n[bogus]\n");
    r.daemon.signal(SIGHUP);
    ASSERT_TRUE(r.daemon.wait_log("reload failed", 2s)) << r.daemon.log();
    std::string log = r.daemon.log();
    EXPECT_NE(log.find("memory.min_available"), std::string::npos) << log;
    EXPECT_NE(log.find("oomguard.toml:2"), std::string::npos) << "error must name the line\n"
                                                              << log;
    EXPECT_TRUE(r.daemon.running());
    EXPECT_TRUE(r.notify.wait_for("reload failed", 2s)) << "STATUS should show the error";
    // The old threshold (500MiB) is still in force: 600MiB does not trigger, 450 does.
    r.proc.set_available(600 * MiB);
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(r.fifo->drain(), 0u);
    r.proc.set_available(450 * MiB);
    EXPECT_TRUE(r.fifo->wait_byte(2s)) << r.daemon.log();
}

TEST(Daemon, SighupWithValidConfigApplies) {
    Rig r;
    r.proc.set_available(700 * MiB);
    r.start(r.config("min_available = \"500MiB\""));
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(r.fifo->drain(), 0u);
    r.write_config(r.config("min_available = \"1GiB\""));
    r.daemon.signal(SIGHUP);
    ASSERT_TRUE(r.daemon.wait_log("reloaded", 2s)) << r.daemon.log();
    EXPECT_TRUE(r.fifo->wait_byte(2s)) << "700MiB is below the new 1GiB threshold\n"
                                       << r.daemon.log();
}

TEST(Daemon, SigtermExitsZeroWithStopping) {
    Rig r;
    r.start(r.config("min_available = \"500MiB\""));
    r.daemon.signal(SIGTERM);
    EXPECT_EQ(r.daemon.wait_exit(3s), 0) << r.daemon.log();
    EXPECT_TRUE(r.notify.wait_for("STOPPING=1", 1s));
}

TEST(Daemon, NotifyProtocol) {
    Rig r;
    r.proc.set_available(2048 * MiB);
    r.start(r.config("min_available = \"500MiB\""), {}, {{"WATCHDOG_USEC", "400000"}});
    // READY carries a STATUS line with the numbers.
    auto ready = std::find_if(r.notify.messages().begin(), r.notify.messages().end(),
                              [](auto& m) { return m.find("READY=1") != std::string::npos; });
    ASSERT_NE(ready, r.notify.messages().end());
    EXPECT_NE(ready->find("STATUS=MemAvailable 2.0 GiB / threshold 500 MiB"), std::string::npos)
        << *ready;
    // Watchdog pings at least every WATCHDOG_USEC/4 (100ms): expect several within 600ms.
    std::this_thread::sleep_for(600ms);
    r.notify.pump(10ms);
    EXPECT_GE(r.notify.count("WATCHDOG=1"), 3u);
    // STATUS refreshes about once a second.
    r.proc.set_available(1024 * MiB);
    EXPECT_TRUE(r.notify.wait_for("STATUS=MemAvailable 1.0 GiB", 3s));
    // Reload: RELOADING=1 with MONOTONIC_USEC, then READY=1.
    size_t readies = r.notify.count("READY=1");
    r.daemon.signal(SIGHUP);
    ASSERT_TRUE(r.notify.wait_for("RELOADING=1", 2s));
    bool mono = false;
    for (auto& m : r.notify.messages())
        if (m.find("RELOADING=1") != std::string::npos &&
            m.find("MONOTONIC_USEC=") != std::string::npos)
            mono = true;
    EXPECT_TRUE(mono);
    auto deadline = Clock::now() + 2s;
    while (r.notify.count("READY=1") <= readies && Clock::now() < deadline) r.notify.pump(20ms);
    EXPECT_GT(r.notify.count("READY=1"), readies);
    r.daemon.signal(SIGTERM);
    EXPECT_EQ(r.daemon.wait_exit(3s), 0);
    EXPECT_TRUE(r.notify.wait_for("STOPPING=1", 1s));
}

TEST(Daemon, NoWatchdogPingsWithoutWatchdogUsec) {
    Rig r;
    r.start(r.config("min_available = \"500MiB\""));
    std::this_thread::sleep_for(300ms);
    r.notify.pump(10ms);
    EXPECT_EQ(r.notify.count("WATCHDOG=1"), 0u);
}

// A bare DaemonProcess (no rig) is hermetic by default (support/process.hpp):
// its own cgroup root, kmsg, lock and a dead system bus address.
TEST(Daemon, RefusesToStartWithBrokenConfig) {
    TempDir d;
    FakeProc proc(d.file("proc"), 16384 * MiB);
    d.write("c.toml",
            "[memory]\nmin_available = \"5\"\n[action]\nsysrq_trigger = \"" + d.file("t") + "\"\n");
    DaemonProcess p;
    p.start({"--config", d.file("c.toml"), "--proc-root", proc.dir(), "--log-target=stderr",
             "--no-mlock"},
            {}, d.file("log"));
    EXPECT_EQ(p.wait_exit(3s), 1);
    EXPECT_NE(p.log().find("c.toml:2: memory.min_available"), std::string::npos) << p.log();
}

TEST(Daemon, KernelWithoutMemAvailableIsAClearError) {
    TempDir d;
    FakeProc proc(d.file("proc"), 16000 * MiB);
    proc.meminfo(16000 * MiB, 976 * MiB, MeminfoLayout::NoMemAvailable);
    d.write("c.toml", "[memory]\nmin_available = \"5%\"\n[action]\nsysrq_trigger = \"" +
                          d.file("t") + "\"\n");
    DaemonProcess p;
    p.start({"--config", d.file("c.toml"), "--proc-root", proc.dir(), "--log-target=stderr",
             "--no-mlock"},
            {}, d.file("log"));
    EXPECT_EQ(p.wait_exit(3s), 1);
    EXPECT_NE(p.log().find("no MemAvailable line"), std::string::npos) << p.log();
}

// Issue 10, defect 4: levels the node cannot have.
TEST(Daemon, RefusesAbsoluteLevelAboveMemTotal) {
    TempDir d;
    FakeProc proc(d.file("proc"), 4096 * MiB);
    proc.set_available(3500 * MiB);
    d.write("c.toml", "[memory]\nmin_available = \"8GiB\"\n[action]\nsysrq_trigger = \"" +
                          d.file("t") +
                          "\"\n[poll]\npsi = false\n[kubernetes]\nlog_heaviest = false\n");
    DaemonProcess p;
    p.start({"--config", d.file("c.toml"), "--proc-root", proc.dir(), "--log-target=stderr",
             "--no-mlock"},
            {}, d.file("log"));
    EXPECT_EQ(p.wait_exit(3s), 1) << p.log();
    EXPECT_NE(p.log().find("c.toml:2: memory.min_available: (8.0 GiB) is at or above this node's "
                           "MemTotal (4.0 GiB"),
              std::string::npos)
        << p.log();
}

TEST(Daemon, ReloadWithLevelAboveMemTotalKeepsOldConfig) {
    Rig r;
    // A 4 GiB node.
    FakeProc small(r.dir.file("small/proc"), 4096 * MiB);
    small.set_available(3000 * MiB);
    r.fifo.emplace(r.dir.file("trigger.fifo"));
    r.write_config(poll_config(r, "min_available = \"500MiB\"", "", ""));
    r.daemon.start(r.args(small.dir()), r.env(), r.dir.file("daemon.log"));
    ASSERT_TRUE(r.notify.wait_for("READY=1", 5s)) << r.daemon.log();
    r.write_config(
        poll_config(r, "min_available = \"1GiB\"\nrecover_available = \"5GiB\"", "", ""));
    r.daemon.signal(SIGHUP);
    ASSERT_TRUE(r.daemon.wait_log("reload failed", 2s)) << r.daemon.log();
    EXPECT_NE(r.daemon.log().find(
                  "memory.recover_available: (5.0 GiB) is at or above this node's MemTotal"),
              std::string::npos)
        << r.daemon.log();
    EXPECT_TRUE(r.daemon.running());
    // The old threshold (500 MiB) is still in force: 800 MiB does not trigger, 450 does.
    small.set_available(800 * MiB);
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(r.fifo->drain(), 0u) << r.daemon.log();
    small.set_available(450 * MiB);
    EXPECT_TRUE(r.fifo->wait_byte(2s)) << r.daemon.log();
}

// Hermetic rig (issue 11): the rig's daemon ranks the rig's own (empty) cgroup
// root and reads the rig's kmsg file, never the host's /sys/fs/cgroup or
// /dev/kmsg: its startup says which cgroup root it found, and a kernel OOM
// report written to the rig's kmsg file is the one it reports.
TEST(Hermetic, RigDaemonSeesTheRigsCgroupRootAndKmsgNotTheHosts) {
    Rig r;
    r.start(r.config("min_available = \"500MiB\""));
    const std::string cgroup_root = r.paths.cgroup_root, kmsg = r.paths.kmsg;
    ASSERT_TRUE(r.daemon.wait_log("no kubepods cgroup under ", 2s)) << r.daemon.log();
    EXPECT_TRUE(r.daemon.wait_log("no kubepods cgroup under " + cgroup_root, 1s))
        << "the daemon looked at another cgroup root than the rig's " << cgroup_root << "\n"
        << r.daemon.log();
    EXPECT_EQ(r.daemon.log().find("/sys/fs/cgroup"), std::string::npos) << r.daemon.log();
    EXPECT_EQ(r.daemon.log().find("/dev/kmsg"), std::string::npos) << r.daemon.log();
    EXPECT_EQ(r.daemon.log().find("/run/"), std::string::npos) << "host lock or system bus\n"
                                                               << r.daemon.log();

    // A memcg OOM kill, as the kernel writes it, in the rig's kmsg file.
    const std::string report = kmsg_oom_kill(100, 4242, "/hermetic-test");
    std::string before = read_file(kmsg);
    write_file(kmsg, before + report);
    const std::string v = r.daemon.wait_event("kernel-oom", "OOMGUARD_VICTIM_PID=4242", 3s);
    EXPECT_FALSE(v.empty()) << "the daemon did not read the rig's kmsg file " << kmsg << "\n"
                            << r.daemon.log();
    EXPECT_EQ(field(v, "OOMGUARD_CGROUP"), "/hermetic-test") << v;
}
