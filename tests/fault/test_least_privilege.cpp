// The config decides which file the daemon writes 'f' to as root, so the daemon
// refuses a config file that anyone but root could have edited: at start, on
// reload (keeping the old config), and in --check-config. --allow-insecure-config
// is the explicit override for tests.
#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "fault_rig.hpp"

using namespace oomguard::test;
using namespace std::chrono_literals;

namespace {

uid_t nobody_uid() {
    const passwd* pw = ::getpwnam("nobody");
    return pw ? pw->pw_uid : 65534;
}

struct Insecure : FaultRig {
    ConfigText c;
    Insecure() {
        c.trigger = dir.file("trigger");
        write_file(c.trigger, "");
        proc.set_available(2048 * MiB);
    }
    // Starts the daemon expecting it to refuse; returns its exit code.
    int start_refused(std::vector<std::string> extra = {}) {
        std::vector<std::string> args = base_args();
        args.insert(args.end(), extra.begin(), extra.end());
        daemon.start(args, env(), dir.file("daemon.log"));
        return daemon.wait_exit(5s);
    }
};

}  // namespace

TEST(LeastPrivilege, RefusesConfigOwnedByAnotherUser) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown the config";
    Insecure r;
    r.write_config(r.c.render());
    ASSERT_EQ(::chown(r.config_path.c_str(), nobody_uid(), static_cast<gid_t>(-1)), 0);
    EXPECT_EQ(r.start_refused(), 1) << r.daemon.log();
    std::string log = r.daemon.log();
    EXPECT_NE(log.find("refusing config file: it is owned by uid " + std::to_string(nobody_uid()) +
                       ", not root"),
              std::string::npos)
        << log;
    EXPECT_NE(log.find(r.config_path), std::string::npos) << "the error names the file\n" << log;
    EXPECT_NE(log.find("--allow-insecure-config"), std::string::npos) << log;
    EXPECT_FALSE(r.notify.wait_for("READY=1", 100ms));
}

TEST(LeastPrivilege, RefusesGroupWritableConfig) {
    Insecure r;
    r.write_config(r.c.render());
    ::chmod(r.config_path.c_str(), 0664);
    EXPECT_EQ(r.start_refused(), 1) << r.daemon.log();
    EXPECT_NE(r.daemon.log().find("is writable by its group (mode 0664)"), std::string::npos)
        << r.daemon.log();
    EXPECT_NE(r.daemon.log().find("chmod go-w"), std::string::npos) << r.daemon.log();
}

TEST(LeastPrivilege, RefusesWorldWritableConfig) {
    Insecure r;
    r.write_config(r.c.render());
    ::chmod(r.config_path.c_str(), 0646);
    EXPECT_EQ(r.start_refused(), 1) << r.daemon.log();
    EXPECT_NE(r.daemon.log().find("is writable by others (mode 0646)"), std::string::npos)
        << r.daemon.log();
}

TEST(LeastPrivilege, SymlinkToAnInsecureFileIsRefused) {
    // The file read is the file checked: a root-owned link does not launder it.
    Insecure r;
    std::string target = r.dir.file("real.toml");
    write_file(target, r.c.render());
    ::chmod(target.c_str(), 0666);
    ASSERT_EQ(::symlink(target.c_str(), r.config_path.c_str()), 0);
    EXPECT_EQ(r.start_refused(), 1) << r.daemon.log();
    EXPECT_NE(r.daemon.log().find("writable by others (mode 0666)"), std::string::npos)
        << r.daemon.log();
}

TEST(LeastPrivilege, ExplicitOverrideStartsAndTriggers) {
    Insecure r;
    r.write_config(r.c.render());
    ::chmod(r.config_path.c_str(), 0666);
    std::vector<std::string> args = r.base_args();
    args.push_back("--allow-insecure-config");
    r.daemon.start(args, r.env(), r.dir.file("daemon.log"));
    ASSERT_TRUE(r.notify.wait_for("READY=1", 5s)) << r.daemon.log();
    r.proc.set_available(400 * MiB);
    EXPECT_TRUE(wait_f_count(r.c.trigger, 1, 2s)) << r.daemon.log();
}

TEST(LeastPrivilege, ReloadOfAnInsecureConfigKeepsTheOldOne) {
    Insecure r;
    r.c.action = "repeat_after = \"10s\"";
    ASSERT_TRUE(r.start(r.c.render())) << r.daemon.log();
    // A world-writable edit raising the threshold to 1GiB: refused, 500MiB stays.
    ConfigText raised = r.c;
    raised.memory = "min_available = \"1GiB\"";
    r.write_config(raised.render());
    ::chmod(r.config_path.c_str(), 0666);
    r.daemon.signal(SIGHUP);
    ASSERT_TRUE(r.daemon.wait_log("reload failed", 2s)) << r.daemon.log();
    EXPECT_NE(r.daemon.log().find("writable by others"), std::string::npos) << r.daemon.log();
    r.proc.set_available(700 * MiB);
    std::this_thread::sleep_for(250ms);
    EXPECT_EQ(f_count(r.c.trigger), 0u) << "the refused 1GiB threshold was applied\n"
                                        << r.daemon.log();
    // Fixed permissions: the same file now loads.
    ::chmod(r.config_path.c_str(), 0644);
    r.daemon.signal(SIGHUP);
    ASSERT_TRUE(r.daemon.wait_log("reloaded", 2s)) << r.daemon.log();
    EXPECT_TRUE(wait_f_count(r.c.trigger, 1, 2s)) << "700MiB is below the new 1GiB\n"
                                                  << r.daemon.log();
}

TEST(LeastPrivilege, CheckConfigReportsAnInsecureFile) {
    Insecure r;
    r.write_config(r.c.render());
    ::chmod(r.config_path.c_str(), 0666);
    DaemonProcess p;
    p.start({"--check-config", r.config_path}, {}, r.dir.file("check.log"));
    EXPECT_EQ(p.wait_exit(5s), 1) << p.log();
    EXPECT_NE(p.log().find("writable by others"), std::string::npos) << p.log();
    DaemonProcess q;
    q.start({"--check-config", "--allow-insecure-config", r.config_path}, {},
            r.dir.file("check2.log"));
    EXPECT_EQ(q.wait_exit(5s), 0) << q.log();
}

TEST(LeastPrivilege, UnprivilegedDaemonAcceptsItsOwnConfig) {
    // A daemon that is not root gains nothing from its own user's file: allowed.
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to run the daemon as nobody";
    if (::access("/usr/bin/setpriv", X_OK) != 0)
        GTEST_SKIP() << "setpriv (util-linux) is not installed";
    Insecure r;
    r.open_to_others();
    ::chmod(r.c.trigger.c_str(), 0666);
    r.write_config(r.c.render());
    ASSERT_EQ(::chown(r.config_path.c_str(), nobody_uid(), static_cast<gid_t>(-1)), 0);
    std::vector<std::string> args = r.base_args();
    r.daemon.start(args, r.env(), r.dir.file("daemon.log"), kAsNobody);
    ASSERT_TRUE(r.notify.wait_for("READY=1", 5s)) << r.daemon.log();
    r.proc.set_available(400 * MiB);
    EXPECT_TRUE(wait_f_count(r.c.trigger, 1, 2s)) << r.daemon.log();
}
