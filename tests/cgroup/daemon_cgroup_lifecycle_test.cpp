// The real oomguard binary's start and reloads on a cgroup node: dry-run to a
// real mode mid-episode, an unusable trigger path, no repeated heaviest table,
// a second instance refused. ~4 s.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include "daemon_cgroup_rig.hpp"

using namespace oomguard;
using namespace oomguard::test;
using namespace oomguard::test::daemon_cgroup_rig;

// Red-team finding 3: a dry-run "trigger" used up the real action's turn: a
// reload from mode = "dry-run" to a real mode mid-episode waited repeat_after
// (here 1 h) before the first real write. Now it is due at once.
TEST(DaemonCgroups, ReloadFromDryRunToRealActsAtOnce) {
    FakeNode n(CgroupVersion::V2, "dry-run");
    n.paths.repeat_after = "1h";
    DaemonProcess& d = n.start(false);
    ASSERT_FALSE(d.wait_event("trigger", "dry-run: would ask the kernel OOM killer").empty())
        << d.log();
    n.paths.mode = "sysrq";
    write_config(n.tmp, n.paths);
    ::kill(d.pid(), SIGHUP);
    ASSERT_FALSE(d.wait_event("reload").empty()) << d.log();
    std::string t = d.wait_event("trigger", "asked the kernel OOM killer", std::chrono::seconds(3));
    EXPECT_FALSE(t.empty()) << "no real action after the reload from dry-run\n" << d.log();
    EXPECT_EQ(d.stop(), 0);
    EXPECT_EQ(readFile(n.paths.trigger), "f");
}

// Red-team finding 6: a trigger path that cannot be opened showed only at the
// first crossing. Now start and reload open it for writing (never write) and
// warn, naming the path and errno; a FIFO without a reader is "no reader yet".
TEST(DaemonCgroups, UnusableTriggerPathIsReportedAtStartAndReload) {
    FakeNode n(CgroupVersion::V2, "sysrq", 4ull << 30);  // plenty available: no crossing
    n.paths.trigger = n.tmp / "no-such-dir/trigger";
    DaemonProcess& d = n.start(false);
    ASSERT_FALSE(d.wait_event("start").empty()) << d.log();  // then SIGHUP is handled
    std::string w = d.wait_entry(
        [&](const std::string& e) {
            return e.find("cannot be opened for writing") != std::string::npos;
        },
        std::chrono::seconds(5));
    EXPECT_FALSE(w.empty()) << d.log();
    EXPECT_NE(w.find(n.paths.trigger), std::string::npos) << w;
    EXPECT_NE(w.find("No such file or directory"), std::string::npos) << w;
    EXPECT_EQ(field(w, "ERRNO"), std::to_string(ENOENT)) << w;
    // Reload onto a FIFO without a reader: a supported setup, said as such.
    n.paths.trigger = n.tmp / "fifo";
    ASSERT_EQ(::mkfifo(n.paths.trigger.c_str(), 0600), 0);
    write_config(n.tmp, n.paths);
    ::kill(d.pid(), SIGHUP);
    std::string f = d.wait_entry(
        [&](const std::string& e) { return e.find("no reader yet") != std::string::npos; },
        std::chrono::seconds(5));
    EXPECT_FALSE(f.empty()) << d.log();
    EXPECT_NE(f.find(n.paths.trigger), std::string::npos) << f;
    EXPECT_EQ(d.stop(), 0);
}

// Red-team finding 7: every reload logged the whole heaviest table and the
// allocatable warning (a SIGHUP storm: 7.2 MB of log in 8 s, enough for
// journald's rate limit to drop trigger entries). Now only when they changed,
// or once a minute.
TEST(DaemonCgroups, ReloadsDoNotRepeatAnUnchangedHeaviestTable) {
    FakeNode n(CgroupVersion::V2, "sysrq", 4ull << 30);  // plenty available: no crossing
    n.fs.cgroup("kubepods", 0);                          // no limit: the allocatable warning
    n.pod("besteffort", 1, "default", "hog", 900 * MiB);
    DaemonProcess& d = n.start(false);
    ASSERT_FALSE(d.wait_event("heaviest").empty()) << d.log();
    auto pause = [&] {
        d.wait_entry([](const std::string&) { return false; }, std::chrono::milliseconds(200));
    };
    for (int i = 0; i < 5; ++i) {
        ::kill(d.pid(), SIGHUP);
        pause();  // apart, so that they are separate reloads
    }
    // A changed ranking is logged at the next reload.
    n.fs.cgroup("kubepods/besteffort/pod" + pod_uid(2), 1900 * MiB);
    n.fs.cgroup("kubepods/besteffort/pod" + pod_uid(2) + "/" + container_id(2), 1900 * MiB);
    ::kill(d.pid(), SIGHUP);
    pause();
    EXPECT_EQ(d.stop(), 0);
    const std::string out = d.log();
    auto count = [&](const std::string& needle) {
        size_t n = 0;
        for (size_t p = out.find(needle); p != std::string::npos; p = out.find(needle, p + 1)) ++n;
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
    FakeNode n(CgroupVersion::V2, "sysrq", 4ull << 30);  // plenty available: no crossing
    n.paths.lock = n.tmp / "oomguard.lock";
    const std::string config = write_config(n.tmp, n.paths);
    DaemonProcess a(args(config, false));
    ASSERT_FALSE(a.wait_event("start").empty()) << a.log();
    EXPECT_EQ(readFile(n.paths.lock), std::to_string(a.pid()) + "\n");
    DaemonProcess b(args(config, false));
    std::string refused = b.wait_entry(
        [](const std::string& e) {
            return e.find("another oomguard instance") != std::string::npos;
        },
        std::chrono::seconds(5));
    EXPECT_FALSE(refused.empty()) << b.log();
    EXPECT_NE(refused.find("(pid " + std::to_string(a.pid()) + ")"), std::string::npos) << refused;
    EXPECT_NE(refused.find(n.paths.lock), std::string::npos) << refused;
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
