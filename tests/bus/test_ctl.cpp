// oomguardctl against the real oomguard on a private bus: every command's
// output (text and --json, parsed with python3's json), and its exit codes.
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "bus_fixture.hpp"
#include "oomguard_build_config.h"

using namespace oomguard::bustest;

namespace {

bool has_line(const std::string& text, const std::string& line) {
    return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

}  // namespace

TEST(Ctl, StatusShowsStateMemoryAgainstTheThresholdAndTriggers) {
    SKIP_UNLESS_READY(false);
    BusRig r;
    r.start_daemon();
    RunResult s = r.ctl({"status"});
    ASSERT_EQ(s.exit_code, 0) << s.err;
    const std::string& o = s.out;
    EXPECT_TRUE(has_line(o, std::string("● oomguard ") + OOMGUARD_VERSION + ": ok")) << o;
    EXPECT_TRUE(has_line(o, "         State: ok")) << o;
    EXPECT_TRUE(has_line(o, "  MemAvailable: 4.0 GiB of 16 GiB (25%)")) << o;
    EXPECT_TRUE(has_line(o, "     Threshold: 500 MiB (3.5 GiB above it)")) << o;
    EXPECT_TRUE(has_line(o, "    Warning at: 1000 MiB")) << o;
    EXPECT_TRUE(has_line(o, "        Action: sysrq")) << o;
    EXPECT_TRUE(has_line(o, "      Triggers: 0")) << o;
    EXPECT_TRUE(has_line(o, "  Last trigger: never")) << o;
    EXPECT_TRUE(has_line(o, "   Last victim: none")) << o;
    EXPECT_TRUE(has_line(o, "     OOM kills: 0 by the kernel")) << o;
    EXPECT_TRUE(has_line(o, "        Config: " + r.config_path)) << o;
    EXPECT_TRUE(has_line(o, "  none known (no cgroup data)")) << o;
    // `status` is the default command.
    EXPECT_EQ(r.ctl({}).out, o);

    r.proc.set_available(400 * MiB);
    ASSERT_TRUE(r.fifo.wait_byte(2s));
    ASSERT_TRUE(r.daemon.wait_log("trigger: MemAvailable", 2s));
    s = r.ctl({"status"});
    EXPECT_TRUE(has_line(s.out, std::string("● oomguard ") + OOMGUARD_VERSION + ": critical"))
        << s.out;
    EXPECT_TRUE(has_line(s.out, "     Threshold: 500 MiB (100 MiB BELOW it)")) << s.out;
    EXPECT_TRUE(has_line(s.out, "      Triggers: 1")) << s.out;
    EXPECT_NE(s.out.find("  Last trigger: 20"), std::string::npos)
        << s.out;  // a date, then "… ago"
    EXPECT_NE(s.out.find(" ago\n"), std::string::npos) << s.out;
}

TEST(Ctl, StatusJson) {
    SKIP_UNLESS_READY(false);
    BusRig r;
    r.start_daemon({"--dry-run"});
    RunResult s = r.ctl({"status", "--json"});
    ASSERT_EQ(s.exit_code, 0) << s.err;
    auto j = flatten_json(s.out);
    ASSERT_EQ(j.count("__error__"), 0u) << j["__error__"] << "\n" << s.out;
    EXPECT_EQ(j["version"], std::string("\"") + OOMGUARD_VERSION + "\"");
    EXPECT_EQ(j["state"], "\"ok\"");
    EXPECT_EQ(j["mem_available_bytes"], std::to_string(4096 * MiB));
    EXPECT_EQ(j["mem_total_bytes"], std::to_string(16384 * MiB));
    EXPECT_EQ(j["threshold_bytes"], std::to_string(500 * MiB));
    EXPECT_EQ(j["warn_threshold_bytes"], std::to_string(1000 * MiB));
    EXPECT_EQ(j["mode"], "\"sysrq\"");
    EXPECT_EQ(j["dry_run"], "true");
    EXPECT_EQ(j["trigger_count"], "0");
    EXPECT_EQ(j["trigger_failures"], "0");
    EXPECT_EQ(j["last_trigger_usec"], "0");
    EXPECT_EQ(j["kernel_oom_kills"], "0");
    EXPECT_EQ(j["config_path"], "\"" + r.config_path + "\"");
    EXPECT_EQ(j["last_error"], "\"\"");
    EXPECT_EQ(j["last_trigger_target"], "null");
    EXPECT_EQ(j["last_victim"], "null");
    EXPECT_EQ(j["heaviest#len"], "0");

    r.proc.set_available(300 * MiB);
    ASSERT_TRUE(r.daemon.wait_log("would ask the kernel OOM killer", 2s)) << r.daemon.log();
    j = flatten_json(r.ctl({"--json", "status"}).out);
    EXPECT_EQ(j["state"], "\"critical\"");
    EXPECT_EQ(j["trigger_count"], "1");
    EXPECT_NE(j["last_trigger_usec"], "0");
}

TEST(Ctl, TopTextJsonAndCountValidation) {
    SKIP_UNLESS_READY(false);
    BusRig r;
    r.start_daemon();
    RunResult t = r.ctl({"top"});
    EXPECT_EQ(t.exit_code, 0) << t.err;
    EXPECT_EQ(t.out, "No pods or containers known (no cgroup data).\n");
    RunResult j = r.ctl({"top", "-n", "5", "--json"});
    EXPECT_EQ(j.exit_code, 0) << j.err;
    EXPECT_EQ(flatten_json(j.out)["#len"], "0") << j.out;
    EXPECT_EQ(r.ctl({"top", "-n", "0"}).exit_code, 0);
    EXPECT_EQ(r.ctl({"top", "-n", "1000"}).exit_code, 0);
    for (const char* bad : {"1001", "-1", "abc", "5x", ""}) {
        RunResult b = r.ctl({"top", "-n", bad});
        EXPECT_EQ(b.exit_code, 2) << bad;
        EXPECT_NE(b.err.find("-n: expected a number from 0 to 1000"), std::string::npos) << b.err;
    }
}

TEST(Ctl, DumpPrintsTheDaemonsDump) {
    SKIP_UNLESS_READY(false);
    BusRig r;
    r.start_daemon();
    RunResult d = r.ctl({"dump"});
    ASSERT_EQ(d.exit_code, 0) << d.err;
    BusClient client;
    std::string direct = client.proxy().Dump();
    // Equal but for the sample counter, which moves between the two calls.
    auto strip = [](std::string s) {
        size_t a = s.find("Samples:");
        return s.erase(a, s.find('\n', a) - a);
    };
    EXPECT_EQ(strip(d.out), strip(direct));
    EXPECT_NE(d.out.find("Effective config:\n[memory]"), std::string::npos) << d.out;
}

TEST(Ctl, ReloadAsRootAndWithABrokenConfig) {
    SKIP_UNLESS_READY(false);
    BusRig r;
    r.start_daemon();
    r.write_config(r.config().replace(r.config().find("\"500MiB\""), 8, "\"650MiB\""));
    RunResult ok = r.ctl({"reload"});
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_EQ(ok.out, "oomguard reloaded its config\n");
    EXPECT_EQ(r.busctl_property("Threshold"), "t " + std::to_string(650 * MiB));

    r.write_config(r.config().replace(r.config().find("\"500MiB\""), 8, "5"));
    RunResult bad = r.ctl({"reload"});
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.err.find("oomguardctl: reload: reload failed"), std::string::npos) << bad.err;
    EXPECT_NE(bad.err.find("memory.min_available"), std::string::npos) << bad.err;
    EXPECT_EQ(r.busctl_property("Threshold"), "t " + std::to_string(650 * MiB));
    EXPECT_TRUE(r.daemon.running());
}

TEST(Ctl, MonitorFollowsTheSignalsUntilInterrupted) {
    SKIP_UNLESS_READY(false);
    BusRig r;
    Process mon;
    // Started before the daemon: it waits for it.
    mon.start({ctl_binary(), "monitor"}, r.env(), r.dir.file("mon.out"), r.dir.file("mon.err"));
    ASSERT_TRUE(mon.wait_err("following oomguard's signals", 3s)) << mon.err();
    EXPECT_NE(mon.err().find("oomguard is not running; waiting for it"), std::string::npos)
        << mon.err();
    r.start_daemon();
    ASSERT_TRUE(mon.wait_out("oomguard appeared on the bus", 3s)) << mon.out();

    r.proc.set_available(900 * MiB);
    ASSERT_TRUE(
        mon.wait_out("Warning: MemAvailable 900 MiB is below the warning level 1000 MiB", 3s))
        << mon.out();
    ASSERT_TRUE(mon.wait_out("State: warning", 3s)) << mon.out();
    r.proc.set_available(400 * MiB);
    ASSERT_TRUE(mon.wait_out("Triggered: sysrq at MemAvailable 400 MiB; heaviest: unknown", 3s))
        << mon.out();
    ASSERT_TRUE(mon.wait_out("State: critical", 3s)) << mon.out();
    r.proc.set_available(2500 * MiB);
    ASSERT_TRUE(mon.wait_out("Recovered: MemAvailable 2.4 GiB after ", 3s)) << mon.out();
    ASSERT_TRUE(mon.wait_out("State: ok", 3s)) << mon.out();

    r.daemon.signal(SIGTERM);
    ASSERT_EQ(r.daemon.wait_exit(3s), 0);
    ASSERT_TRUE(mon.wait_out("oomguard left the bus", 3s)) << mon.out();
    EXPECT_TRUE(mon.running());
    mon.signal(SIGINT);
    EXPECT_EQ(mon.wait_exit(3s), 0) << mon.err();
    // Each line: "HH:MM:SS.mmm Event: ...".
    std::string out = mon.out();
    EXPECT_EQ(count_of(out, "Triggered:"), 1u) << out;
    EXPECT_EQ(out[2], ':') << out;
    EXPECT_EQ(out[8], '.') << out;
}

TEST(Ctl, MonitorExitsWhenTheBusGoesAway) {
    SKIP_UNLESS_READY(false);
    BusRig r;
    r.start_daemon();
    Process mon;
    mon.start({ctl_binary(), "monitor"}, r.env(), r.dir.file("mon.out"), r.dir.file("mon.err"));
    ASSERT_TRUE(mon.wait_err("following", 3s)) << mon.err();
    r.bus.kill();
    EXPECT_EQ(mon.wait_exit(3s), 5) << mon.err();
    EXPECT_NE(mon.err().find("lost the system bus connection"), std::string::npos) << mon.err();
}

TEST(Ctl, ExitCodesForEachFailure) {
    SKIP_UNLESS_READY(true);
    BusRig r;
    // Bus up, no daemon.
    for (const char* cmd : {"status", "top", "dump", "reload"}) {
        RunResult nr = r.ctl({cmd});
        EXPECT_EQ(nr.exit_code, 3) << cmd << ": " << nr.err;
        EXPECT_NE(
            nr.err.find("oomguard is not running (org.oomguard1 has no owner on the system bus)"),
            std::string::npos)
            << nr.err;
    }
    // No bus at all.
    RunResult nb = run({ctl_binary(), "status"},
                       {{"DBUS_SYSTEM_BUS_ADDRESS", "unix:path=" + r.dir.file("none.sock")}});
    EXPECT_EQ(nb.exit_code, 5) << nb.err;
    EXPECT_NE(
        nb.err.find("cannot connect to the system bus at unix:path=" + r.dir.file("none.sock")),
        std::string::npos)
        << nb.err;

    r.start_daemon();
    // Denied: reload as nobody.
    RunResult dn = r.ctl({"reload"}, true);
    EXPECT_EQ(dn.exit_code, 4) << dn.err;
    EXPECT_NE(dn.err.find("access denied"), std::string::npos) << dn.err;
    EXPECT_NE(dn.err.find("(reload needs root)"), std::string::npos) << dn.err;
    // ... while reading works for nobody.
    EXPECT_EQ(r.ctl({"status"}, true).exit_code, 0);
    EXPECT_EQ(r.ctl({"top", "--json"}, true).exit_code, 0);
    EXPECT_EQ(r.ctl({"dump"}, true).exit_code, 0);

    // The daemon does not answer (stopped): no reply within the call timeout.
    r.daemon.signal(SIGSTOP);
    RunResult st = r.ctl({"status"});
    r.daemon.signal(SIGCONT);
    EXPECT_EQ(st.exit_code, 6) << st.err;
    EXPECT_NE(st.err.find("oomguard did not answer"), std::string::npos) << st.err;

    // Usage errors.
    EXPECT_EQ(r.ctl({"bogus"}).exit_code, 2);
    EXPECT_EQ(r.ctl({"dump", "--json"}).exit_code, 2);
    EXPECT_EQ(r.ctl({"status", "extra"}).exit_code, 2);
    EXPECT_EQ(r.ctl({"--no-such-option"}).exit_code, 2);
}

TEST(Ctl, HelpDocumentsTheCommandsAndExitCodes) {
    RunResult h = run({ctl_binary(), "--help"});
    EXPECT_EQ(h.exit_code, 0);
    for (const char* s :
         {"status", "top [-n N]", "monitor", "dump", "reload", "--json",
          "Exit status:", "  0  success", "  1  the daemon answered with an error",
          "  2  bad command line", "  3  oomguard is not running", "  4  access denied",
          "  5  cannot connect to the system bus", "  6  oomguard did not answer in time"})
        EXPECT_NE(h.out.find(s), std::string::npos) << s << "\n" << h.out;
    RunResult v = run({ctl_binary(), "--version"});
    EXPECT_EQ(v.out, std::string("oomguardctl ") + OOMGUARD_VERSION + "\n");
}
