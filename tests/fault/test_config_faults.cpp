// Fault injection with the real binary, the config at reload time: deleted,
// garbage, a FIFO, a directory, a huge file, SIGHUP storms. The old config stays
// in force and the next trigger fires. ~4 s.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <functional>
#include <random>
#include <thread>

#include "fault_rig.hpp"

using namespace oomguard::test;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------
// The config file at reload time

namespace {

// Starts with a 500MiB threshold, breaks the config with `breakit`, reloads, and
// checks the old threshold is still in force: 600MiB does not trigger, 450MiB does.
void expect_old_config_survives(FaultRig& r, const std::function<void(const std::string&)>& breakit,
                                const std::string& expected_error) {
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    c.action = "repeat_after = \"10s\"";
    write_file(c.trigger, "");
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(c.render())) << r.daemon.log();
    breakit(r.config_path);
    r.daemon.signal(SIGHUP);
    ASSERT_TRUE(r.daemon.wait_log("reload failed", 3s)) << r.daemon.log();
    EXPECT_NE(r.daemon.log().find(expected_error), std::string::npos) << r.daemon.log();
    EXPECT_TRUE(r.notify.wait_for("reload failed", 2s)) << "STATUS should show the error";
    EXPECT_TRUE(r.daemon.running());
    r.proc.set_available(600 * MiB);
    std::this_thread::sleep_for(250ms);
    EXPECT_EQ(f_count(c.trigger), 0u) << r.daemon.log();
    r.proc.set_available(450 * MiB);
    EXPECT_TRUE(wait_f_count(c.trigger, 1, 2s)) << r.daemon.log();
}

}  // namespace

TEST(ConfigFault, DeletedBeforeReload) {
    FaultRig r;
    expect_old_config_survives(
        r, [](const std::string& p) { ::unlink(p.c_str()); }, "No such file or directory");
}

TEST(ConfigFault, ReplacedByGarbageBeforeReload) {
    FaultRig r;
    expect_old_config_survives(
        r,
        [](const std::string& p) {
            std::mt19937 rng(7);
            std::string junk(4096, '\0');
            for (auto& ch : junk) ch = static_cast<char>(rng());
            write_file(p, junk);
        },
        "TOML syntax error");
}

TEST(ConfigFault, ReplacedByAFifoDoesNotHang) {
    // Opening a FIFO with no writer blocks a plain open(2) forever.
    FaultRig r;
    expect_old_config_survives(
        r,
        [](const std::string& p) {
            ::unlink(p.c_str());
            ::mkfifo(p.c_str(), 0644);
        },
        "not a regular file");
}

TEST(ConfigFault, ReplacedByADirectory) {
    FaultRig r;
    expect_old_config_survives(
        r,
        [](const std::string& p) {
            ::unlink(p.c_str());
            ::mkdir(p.c_str(), 0755);
        },
        "not a regular file");
}

TEST(ConfigFault, ReplacedByAHugeFile) {
    FaultRig r;
    expect_old_config_survives(
        r,
        [](const std::string& p) {
            std::string big =
                "[memory]\nmin_available = \"1GiB\"\n" + std::string(2 << 20, '#') + "\n";
            write_file(p, big);
        },
        "larger than 1 MiB");
}

TEST(ConfigFault, StormOf1000Sighups) {
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    write_file(c.trigger, "");
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(c.render())) << r.daemon.log();
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(::kill(r.daemon.pid(), SIGHUP), 0) << "signal " << i;
    // Pending SIGHUPs coalesce, and one read of the signalfd takes all queued: the
    // daemon reloads far fewer than 1000 times, at least once, and stays up.
    ASSERT_TRUE(r.daemon.wait_log("reloaded", 3s)) << r.daemon.log();
    std::this_thread::sleep_for(300ms);
    size_t reloads = r.daemon.log_count("reloaded");
    std::printf("1000 SIGHUPs -> %zu reloads\n", reloads);
    RecordProperty("reloads_for_1000_sighups", static_cast<int>(reloads));
    EXPECT_GE(reloads, 1u);
    EXPECT_LE(reloads, 1000u);
    EXPECT_EQ(r.daemon.log_count("reload failed"), 0u);
    EXPECT_TRUE(r.daemon.running());
    r.notify.pump(50ms);
    // One RELOADING=1 per reload (fewer only if the notify queue was full).
    EXPECT_GE(r.notify.count("RELOADING=1"), 1u);
    EXPECT_LE(r.notify.count("RELOADING=1"), reloads);
    // Still monitoring: the next crossing triggers.
    r.proc.set_available(400 * MiB);
    EXPECT_TRUE(wait_f_count(c.trigger, 1, 2s)) << r.daemon.log();
    r.daemon.signal(SIGTERM);
    EXPECT_EQ(r.daemon.wait_exit(3s), 0);
}

TEST(ConfigFault, SighupStormDuringAnEpisode) {
    FaultRig r;
    ConfigText c;
    c.trigger = r.dir.file("trigger");
    write_file(c.trigger, "");
    r.proc.set_available(2048 * MiB);
    ASSERT_TRUE(r.start(c.render())) << r.daemon.log();
    r.proc.set_available(400 * MiB);
    ASSERT_TRUE(wait_f_count(c.trigger, 1, 2s)) << r.daemon.log();
    for (int i = 0; i < 1000; ++i) ::kill(r.daemon.pid(), SIGHUP);
    // Reloads keep the episode: repeats go on every 100ms, with no re-arm in between.
    size_t before = f_count(c.trigger);
    EXPECT_TRUE(wait_f_count(c.trigger, before + 3, 2s)) << r.daemon.log();
    EXPECT_EQ(r.daemon.log_count(kRecoveredEntry), 0u);
    EXPECT_TRUE(r.daemon.running());
}
