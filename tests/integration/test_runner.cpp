// The real binary under a bare DaemonProcess (support/process.hpp), no rig:
// the runner keeps it off the host (its own cgroup root, kmsg, lock, dead
// system bus and a trigger file when the config names none; a config naming
// the host's trigger refused). And what the start and the kmsg counts say
// with nothing but those defaults around. ~1 s.
#include <gtest/gtest.h>

#include <stdexcept>

#include "daemon_rig.hpp"

using namespace oomguard::test;
using namespace oomguard::test::daemon_rig;
using namespace std::chrono_literals;

// The runner's defaults give the daemon a cgroup root, kmsg file, lock and
// (dead) system bus address of its own.
TEST(Hermetic, BareDaemonProcessSeesItsOwnCgroupRootKmsgAndLockNotTheHosts) {
    BareNode n;
    write_file(n.d.file("t"), "");
    DaemonProcess p;
    p.start(n.args("[memory]\nmin_available = \"500MiB\"\n[action]\nmode = \"dry-run\"\n"
                   "sysrq_trigger = \"" +
                   n.d.file("t") + "\"\n[poll]\npsi = false\n[kubernetes]\nlog_heaviest = false\n"),
            {}, n.d.file("log"));
    ASSERT_NE(p.own_paths(), nullptr) << "the runner added no hermetic paths";
    const RigPaths own = *p.own_paths();
    ASSERT_TRUE(p.wait_log("no kubepods cgroup under " + own.cgroup_root, 3s)) << p.log();
    EXPECT_TRUE(RigPaths::sets(read_file(n.d.file("c.toml")), "kmsg"));
    EXPECT_EQ(p.log().find("/sys/fs/cgroup"), std::string::npos) << p.log();
    EXPECT_EQ(p.log().find("/dev/kmsg"), std::string::npos) << p.log();
    EXPECT_EQ(p.log().find("/run/"), std::string::npos) << "host lock or system bus\n" << p.log();
    EXPECT_EQ(read_file(own.lock), std::to_string(p.pid()) + "\n") << "not the runner's lock";
    write_file(own.kmsg, kmsg_oom_kill(100, 4343, "/bare"));
    EXPECT_FALSE(p.wait_event("kernel-oom", "OOMGUARD_VICTIM_PID=4343", 3s).empty())
        << "the daemon did not read the runner's kmsg file " << own.kmsg << "\n"
        << p.log();
    EXPECT_EQ(p.stop(), 0) << p.log();
}

// A config that names no trigger: the daemon's default is the host's
// /proc/sysrq-trigger, so the runner gives it a trigger file of its own, even
// after allow_host(). Memory below the threshold in sysrq mode: the `f` lands
// in the runner's file. Without the guard the test fails and the daemon never
// runs: the wrapper execs it only when the config names a trigger.
TEST(Hermetic, AConfigWithoutATriggerFiresIntoTheRunnersFileEvenWithAllowHost) {
    BareNode n;
    n.proc.set_available(100 * MiB);
    RigPaths paths(n.d.path());
    std::vector<std::string> args = n.args(
        "[memory]\nmin_available = \"500MiB\"\n[action]\nmode = \"sysrq\"\n"
        "[poll]\npsi = false\n[kubernetes]\nlog_heaviest = false\n[paths]\n" +
        paths.toml());
    for (const char* a : {"--no-dbus", "--cgroup-root"}) args.push_back(a);
    args.push_back(paths.cgroup_root);
    DaemonProcess p;
    p.allow_host();
    p.start(args, {}, n.d.file("log"),
            {"/bin/sh", "-c", "grep -q '^sysrq_trigger = ' \"$3\" || exit 97; exec \"$@\"", "sh"});
    ASSERT_NE(p.own_paths(), nullptr) << "the runner gave the config no trigger of its own";
    const std::string trigger = p.own_paths()->trigger;
    EXPECT_NE(read_file(n.d.file("c.toml")).find("sysrq_trigger = \"" + trigger + "\""),
              std::string::npos)
        << read_file(n.d.file("c.toml"));
    ASSERT_FALSE(p.wait_event("trigger", "OOMGUARD_ACTION=sysrq", 5s).empty()) << p.log();
    EXPECT_EQ(read_file(trigger).substr(0, 1), "f") << p.log();
    EXPECT_EQ(p.log().find("/proc/sysrq-trigger"), std::string::npos) << p.log();
    p.stop();
}

// A config that names the host's trigger itself (a copy of the shipped one),
// by any path or TOML string form, is refused before the daemon runs, unless
// the args say --dry-run. The config is dry-run and memory plentiful: were
// the refusal gone, nothing would be written either.
TEST(Hermetic, AConfigNamingTheHostsTriggerIsRefusedWithoutDryRun) {
    for (const std::string value :
         {"\"/proc/sysrq-trigger\"", "'/proc/sysrq-trigger'", "\"/proc/./sysrq-trigger\"  # host",
          "\"/proc/self/root/proc/sysrq-trigger\"", "\"/proc/sys\\u0072q-trigger\""}) {
        BareNode n;
        const std::vector<std::string> args = n.args(
            "[memory]\nmin_available = \"500MiB\"\n[action]\nmode = \"dry-run\"\n"
            "sysrq_trigger = " +
            value + "\n[poll]\npsi = false\n");
        DaemonProcess refused;
        EXPECT_THROW(refused.start(args, {}, n.d.file("log")), std::runtime_error) << value;
        EXPECT_FALSE(refused.running()) << value;
    }
    BareNode n;
    std::vector<std::string> dry = n.args(
        "[memory]\nmin_available = \"500MiB\"\n[action]\nmode = \"dry-run\"\n"
        "sysrq_trigger = \"/proc/sysrq-trigger\"\n[poll]\npsi = false\n");
    dry.push_back("--dry-run");
    DaemonProcess p;
    p.start(dry, {}, n.d.file("log2"));
    EXPECT_TRUE(p.wait_log("monitoring", 3s)) << p.log();
    EXPECT_EQ(p.stop(), 0) << p.log();
}

// The runner's trigger line goes under an [action] header with a comment
// after it (one more [action] table would be a TOML error).
TEST(Hermetic, TheRunnersTriggerGoesUnderACommentedActionHeader) {
    BareNode n;
    DaemonProcess p;
    p.start(n.args("[memory]\nmin_available = \"500MiB\"\n[ action ]  # what to do\n"
                   "mode = \"dry-run\"\n[poll]\npsi = false\n"),
            {}, n.d.file("log"));
    ASSERT_NE(p.own_paths(), nullptr);
    const std::string text = read_file(n.d.file("c.toml"));
    EXPECT_NE(text.find("[ action ]  # what to do\nsysrq_trigger = \"" + p.own_paths()->trigger),
              std::string::npos)
        << text;
    EXPECT_TRUE(p.wait_log("monitoring", 3s)) << p.log();
    EXPECT_EQ(p.stop(), 0) << p.log();
}

// A memcg kill's entry counts like D-Bus KernelOomKills: OOMGUARD_KERNEL_OOM_KILLS
// is every kernel OOM kill (a node-wide one before it included), and
// OOMGUARD_MEMCG_OOM_KILLS the memcg ones (it held the memcg count under the
// D-Bus property's name).
TEST(KernelOomCounts, AMemcgKillsEntryCountsEveryKillAndTheMemcgOnes) {
    BareNode n;
    DaemonProcess p;
    p.start(n.args(kBareDryRun), {}, n.d.file("log"));
    ASSERT_NE(p.own_paths(), nullptr);
    ASSERT_TRUE(p.wait_log("no kubepods cgroup under", 3s)) << p.log();
    write_file(p.own_paths()->kmsg,
               kmsg_oom_kill(100, 4400, "/node", false, "big") + kmsg_oom_kill(102, 4401, "/pod"));
    const std::string k = p.wait_event("kernel-oom", "OOMGUARD_VICTIM_PID=4401", 3s);
    ASSERT_FALSE(k.empty()) << p.log();
    EXPECT_EQ(field(k, "OOMGUARD_KERNEL_OOM_KILLS"), "2") << k;
    EXPECT_EQ(field(k, "OOMGUARD_MEMCG_OOM_KILLS"), "1") << k;
    EXPECT_EQ(p.stop(), 0) << p.log();
}

// $NOTIFY_SOCKET set but unusable: under Type=notify systemd would never hear
// READY=1 and kill the daemon at the start timeout. The start says why (it
// said nothing), and the daemon runs on.
TEST(Notify, AnUnusableNotifySocketIsNamedAtStart) {
    const std::string long_path = "/" + std::string(120, 'n');
    for (const auto& [socket, why] : std::vector<std::pair<std::string, std::string>>{
             {"relative/notify", "neither a path nor @abstract"},
             {long_path, "longer than 107 bytes"}}) {
        BareNode n;
        DaemonProcess p;
        p.start(n.args(kBareDryRun), {{"NOTIFY_SOCKET", socket}}, n.d.file("log"));
        EXPECT_TRUE(p.wait_log("NOTIFY_SOCKET: socket address \"" + socket + "\": " + why +
                                   ": systemd will not hear READY=1",
                               3s))
            << p.log();
        EXPECT_TRUE(p.running()) << p.log();
        EXPECT_EQ(p.stop(), 0) << p.log();
    }
}
