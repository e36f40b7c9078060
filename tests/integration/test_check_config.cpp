// oomguard --check-config: the shipped config, every error named, warnings for
// an unusable trigger path, levels against this host's MemTotal. ~0.2 s.
#include <gtest/gtest.h>

#include <string>

#include "support/support.hpp"

using namespace oomguard::test;
using namespace std::chrono_literals;

TEST(CheckConfig, ShippedConfigPasses) {
    TempDir d;
    DaemonProcess p;
    p.start({"--check-config", std::string(OOMGUARD_SOURCE_DIR) + "/config/oomguard.toml"}, {},
            d.file("log"));
    EXPECT_EQ(p.wait_exit(5s), 0) << p.log();
    EXPECT_NE(p.log().find("min_available = \"350 MiB\""), std::string::npos) << p.log();
}

// Red-team finding 6: a trigger path that cannot be opened passed --check-config
// silently. Now a warning names it (exit 0: it may be checked elsewhere).
TEST(CheckConfig, WarnsAboutAnUnusableTriggerPath) {
    TempDir d;
    d.write("t.toml", "[memory]\nmin_available = \"350MiB\"\n[action]\nsysrq_trigger = \"" +
                          d.file("no-such-dir/trigger") + "\"\n");
    DaemonProcess p;
    p.start({"--check-config", d.file("t.toml")}, {}, d.file("log"));
    EXPECT_EQ(p.wait_exit(5s), 0) << p.log();
    EXPECT_NE(p.log().find("warning: action.sysrq_trigger: cannot open trigger " +
                           d.file("no-such-dir/trigger") + ": No such file or directory"),
              std::string::npos)
        << p.log();
}

TEST(CheckConfig, BrokenConfigNamesEveryError) {
    TempDir d;
    d.write("bad.toml",
            "[memory]\nmin_available = 350\nwarn_available = \"10%\"\n[action]\nmode = \"nuke\"\n");
    DaemonProcess p;
    p.start({"--check-config", d.file("bad.toml")}, {}, d.file("log"));
    EXPECT_EQ(p.wait_exit(5s), 1);
    std::string log = p.log();
    EXPECT_NE(log.find("bad.toml:2: memory.min_available: a bare number has no unit"),
              std::string::npos)
        << log;
    EXPECT_NE(log.find("bad.toml:5: action.mode: unknown mode \"nuke\""), std::string::npos) << log;
    EXPECT_NE(log.find("2 error(s)"), std::string::npos) << log;
}

TEST(CheckConfig, ChecksLevelsAgainstThisHostsMemTotal) {
    TempDir d;
    FakeProc proc(d.file("proc"), 4096 * MiB);
    proc.set_available(3500 * MiB);
    d.write("big.toml", "[memory]\nmin_available = \"8GiB\"\n");
    DaemonProcess p;
    p.start({"--check-config", "--proc-root", proc.dir(), d.file("big.toml")}, {}, d.file("log"));
    EXPECT_EQ(p.wait_exit(5s), 1) << p.log();
    EXPECT_NE(p.log().find("big.toml:2: memory.min_available: (8.0 GiB) is at or above this node's "
                           "MemTotal (4.0 GiB"),
              std::string::npos)
        << p.log();
    d.write("ok.toml", "[memory]\nmin_available = \"350MiB\"\n");
    DaemonProcess q;
    q.start({"--check-config", "--proc-root", proc.dir(), d.file("ok.toml")}, {}, d.file("log2"));
    EXPECT_EQ(q.wait_exit(5s), 0) << q.log();
    EXPECT_NE(q.log().find("levels checked against this host's MemTotal (4.0 GiB"),
              std::string::npos)
        << q.log();
    // No meminfo there (a DaemonSet's /host/proc on another machine): said, not an error.
    DaemonProcess n;
    n.start({"--check-config", "--proc-root", d.file("nowhere"), d.file("ok.toml")}, {},
            d.file("log3"));
    EXPECT_EQ(n.wait_exit(5s), 0) << n.log();
    EXPECT_NE(n.log().find("levels not checked against MemTotal"), std::string::npos) << n.log();
}
