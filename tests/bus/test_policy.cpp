// The shipped bus policy (packaging/dbus/org.oomguard1.conf) on a private
// dbus-daemon: everyone may read, only root may Reload, Set or own the name;
// and the Reload handler checks the caller's uid even under a looser policy.
#include <gtest/gtest.h>

#include "bus_fixture.hpp"

using namespace oomguard::bustest;
namespace dbus = oomguard::dbus;

namespace {

RunResult call(const BusRig& r, const std::vector<std::string>& method_and_args, bool nobody) {
    std::vector<std::string> a = {"call", dbus::kBusName, dbus::kObjectPath, dbus::kInterface};
    a.insert(a.end(), method_and_args.begin(), method_and_args.end());
    return r.busctl(a, nobody);
}

}  // namespace

TEST(BusPolicy, NobodyMayIntrospectReadAndCallTheReadOnlyMethods) {
    SKIP_UNLESS_READY(true);
    BusRig r;
    r.start_daemon();
    RunResult intro = r.busctl({"introspect", dbus::kBusName, dbus::kObjectPath}, true);
    EXPECT_EQ(intro.exit_code, 0) << intro.err;
    EXPECT_NE(intro.out.find(".GetHeaviest"), std::string::npos) << intro.out;
    EXPECT_EQ(r.busctl_property("MemAvailable", true), "t " + std::to_string(4096 * MiB));
    EXPECT_EQ(r.busctl_property("State", true), "s \"ok\"");
    RunResult all = r.busctl({"call", dbus::kBusName, dbus::kObjectPath,
                              "org.freedesktop.DBus.Properties", "GetAll", "s", dbus::kInterface},
                             true);
    EXPECT_EQ(all.exit_code, 0) << all.err;
    EXPECT_NE(all.out.find("\"Threshold\" t " + std::to_string(500 * MiB)), std::string::npos)
        << all.out;
    RunResult h = call(r, {"GetHeaviest", "u", "5"}, true);
    EXPECT_EQ(h.exit_code, 0) << h.err;
    EXPECT_EQ(trim(h.out), "a(ssssstt) 0");
    RunResult d = call(r, {"Dump"}, true);
    EXPECT_EQ(d.exit_code, 0) << d.err;
    EXPECT_EQ(d.out.rfind("s \"oomguard ", 0), 0u);
    RunResult ping = r.busctl(
        {"call", dbus::kBusName, dbus::kObjectPath, "org.freedesktop.DBus.Peer", "Ping"}, true);
    EXPECT_EQ(ping.exit_code, 0) << ping.err;
}

TEST(BusPolicy, NobodyIsDeniedReloadAndSet) {
    SKIP_UNLESS_READY(true);
    BusRig r;
    r.start_daemon();
    r.write_config(r.config().replace(r.config().find("\"500MiB\""), 8, "\"800MiB\""));
    RunResult rl = call(r, {"Reload"}, true);
    EXPECT_NE(rl.exit_code, 0);
    EXPECT_NE(rl.err.find("Access denied"), std::string::npos) << rl.err;
    // The bus refused it: the daemon never saw the call.
    EXPECT_NE(read_file(r.bus.log_path()).find("member=\"Reload\""), std::string::npos);
    EXPECT_EQ(r.daemon.log_count("reload"), 0u) << r.daemon.log();
    EXPECT_EQ(r.busctl_property("Threshold"), "t " + std::to_string(500 * MiB));

    RunResult set = r.busctl({"set-property", dbus::kBusName, dbus::kObjectPath, dbus::kInterface,
                              "DryRun", "b", "true"},
                             true);
    EXPECT_NE(set.exit_code, 0);
    EXPECT_NE(set.err.find("Access denied"), std::string::npos) << set.err;

    // Root may.
    RunResult root = call(r, {"Reload"}, false);
    EXPECT_EQ(root.exit_code, 0) << root.err;
    EXPECT_EQ(r.busctl_property("Threshold"), "t " + std::to_string(800 * MiB));
}

TEST(BusPolicy, NobodyMayNotOwnTheName) {
    SKIP_UNLESS_READY(true);
    BusRig r;  // no daemon: the name is free
    RunResult own = r.busctl({"call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                              "org.freedesktop.DBus", "RequestName", "su", dbus::kBusName, "0"},
                             true);
    EXPECT_NE(own.exit_code, 0);
    EXPECT_NE(own.err.find("Access denied"), std::string::npos) << own.err;
    // Root may (reply 1: primary owner).
    RunResult root = r.busctl({"call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus", "RequestName", "su", dbus::kBusName, "0"});
    EXPECT_EQ(root.exit_code, 0) << root.err;
    EXPECT_EQ(trim(root.out), "u 1");
}

TEST(BusPolicy, OtherMethodsToTheDaemonAreClosedForNobody) {
    SKIP_UNLESS_READY(true);
    BusRig r;
    r.start_daemon();
    // Not in the contract, and not opened by the policy: refused by the bus, not by the daemon.
    RunResult x =
        r.busctl({"call", dbus::kBusName, dbus::kObjectPath, dbus::kInterface, "Bogus"}, true);
    EXPECT_NE(x.exit_code, 0);
    EXPECT_NE(x.err.find("Access denied"), std::string::npos) << x.err;
    // For root the daemon answers: unknown method.
    RunResult y = r.busctl({"call", dbus::kBusName, dbus::kObjectPath, dbus::kInterface, "Bogus"});
    EXPECT_NE(y.exit_code, 0);
    EXPECT_EQ(y.err.find("Access denied"), std::string::npos) << y.err;
}

TEST(BusPolicy, ReloadHandlerChecksTheUidUnderALooserPolicy) {
    SKIP_UNLESS_READY(true);
    BusRig r(BusPolicy::Permissive);
    r.start_daemon();
    r.write_config(r.config().replace(r.config().find("\"500MiB\""), 8, "\"900MiB\""));
    RunResult rl = call(r, {"Reload"}, true);
    EXPECT_NE(rl.exit_code, 0);
    EXPECT_NE(rl.err.find("Access denied"), std::string::npos) << rl.err;
    // busctl hides the message; oomguardctl shows it: the daemon refused, not the bus.
    RunResult ctl = r.ctl({"reload"}, true);
    EXPECT_EQ(ctl.exit_code, 4) << ctl.err;
    EXPECT_NE(ctl.err.find("Reload requires root; the caller's uid is 65534"), std::string::npos)
        << ctl.err;
    EXPECT_EQ(read_file(r.bus.log_path()).find("Rejected send message"), std::string::npos)
        << read_file(r.bus.log_path());
    EXPECT_EQ(r.daemon.log_count("reload"), 0u) << r.daemon.log();
    EXPECT_EQ(r.busctl_property("Threshold"), "t " + std::to_string(500 * MiB));
    RunResult root = call(r, {"Reload"}, false);
    EXPECT_EQ(root.exit_code, 0) << root.err;
    EXPECT_EQ(r.busctl_property("Threshold"), "t " + std::to_string(900 * MiB));
}
