// org.oomguard1 through the generated proxy and through busctl, against the
// real oomguard on a private bus with the shipped policy.
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <thread>

#include "bus_fixture.hpp"
#include "oomguard_build_config.h"

using namespace oomguard::bustest;
namespace dbus = oomguard::dbus;

namespace {

// The contract, read from the shipped XML: member -> (kind, signature).
struct Member {
    std::string kind, signature;
};

std::map<std::string, Member> contract() {
    std::string xml = read_file(source_dir() + "/packaging/dbus/org.oomguard1.xml");
    std::map<std::string, Member> m;
    std::smatch sm;
    std::regex prop(R"re(<property name="(\w+)" type="([^"]+)")re");
    for (auto it = std::sregex_iterator(xml.begin(), xml.end(), prop); it != std::sregex_iterator();
         ++it)
        m[(*it)[1]] = {"property", (*it)[2]};
    std::regex block(R"re(<(method|signal) name="(\w+)"(/?)>)re");
    std::regex arg(R"re(<arg name="\w+" type="([^"]+)"(?: direction="(in|out)")?)re");
    for (auto it = std::sregex_iterator(xml.begin(), xml.end(), block);
         it != std::sregex_iterator(); ++it) {
        std::string kind = (*it)[1], name = (*it)[2];
        std::string in, out;
        if ((*it)[3] != "/") {
            size_t start = static_cast<size_t>(it->position() + it->length());
            size_t end = xml.find("</" + kind + ">", start);
            std::string body = xml.substr(start, end - start);
            for (auto a = std::sregex_iterator(body.begin(), body.end(), arg);
                 a != std::sregex_iterator(); ++a)
                ((*a)[2] == "out" ? out : in) += (*a)[1];
        }
        // busctl shows a method's input signature; a signal's arguments.
        m[name] = {kind, kind == "method" ? in + "|" + out : in};
    }
    return m;
}

uint64_t now_usec() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
}

}  // namespace

TEST(BusApi, ContractHasEveryMemberTheIssueAsksFor) {
    auto c = contract();
    for (const char* p : {"MemAvailable", "MemTotal", "Threshold", "WarnThreshold", "TriggerCount",
                          "LastTrigger", "KernelOomKills"})
        EXPECT_EQ(c[p].signature, "t") << p;
    for (const char* p : {"State", "Mode", "ConfigPath", "Version", "LastError"})
        EXPECT_EQ(c[p].signature, "s") << p;
    EXPECT_EQ(c["DryRun"].signature, "b");
    EXPECT_EQ(c["GetHeaviest"].signature, "u|a(ssssstt)");
    EXPECT_EQ(c["Dump"].signature, "|s");
    EXPECT_EQ(c["Reload"].signature, "|");
    EXPECT_EQ(c["Warning"].signature, "tt");
    EXPECT_EQ(c["Triggered"].signature, "tssss");
    EXPECT_EQ(c["Victim"].signature, "ussss");
    EXPECT_EQ(c["Recovered"].signature, "tt");
}

TEST(BusApi, BusctlIntrospectShowsTheWholeContract) {
    SKIP_UNLESS_READY(false);
    BusRig r;
    r.start_daemon();
    RunResult res = r.busctl({"introspect", dbus::kBusName, dbus::kObjectPath});
    ASSERT_EQ(res.exit_code, 0) << res.err;
    // ".NAME  kind  signature  result  flags", within the Manager interface.
    std::map<std::string, std::vector<std::string>> rows;
    bool in_manager = false;
    std::stringstream ss(res.out);
    std::string line;
    while (std::getline(ss, line)) {
        std::stringstream ls(line);
        std::vector<std::string> f;
        std::string w;
        while (ls >> w) f.push_back(w);
        if (f.size() >= 2 && f[1] == "interface")
            in_manager = f[0] == dbus::kInterface;
        else if (in_manager && !f.empty() && f[0][0] == '.')
            rows[f[0].substr(1)] = f;
    }
    auto c = contract();
    ASSERT_GE(c.size(), 20u);
    for (const auto& [name, m] : c) {
        ASSERT_TRUE(rows.count(name)) << name << " missing from busctl introspect:\n" << res.out;
        const auto& f = rows[name];
        EXPECT_EQ(f[1], m.kind) << name;
        if (m.kind == "property" || m.kind == "signal") {
            EXPECT_EQ(f[2], m.signature) << name;
        }
        if (m.kind == "method") {
            std::string in = m.signature.substr(0, m.signature.find('|'));
            std::string out = m.signature.substr(m.signature.find('|') + 1);
            EXPECT_EQ(f[2], in.empty() ? "-" : in) << name;
            EXPECT_EQ(f[3], out.empty() ? "-" : out) << name;
        }
    }
    EXPECT_EQ(rows.size(), c.size()) << "the daemon offers members the contract does not list";
}

TEST(BusApi, ProxyIntrospectionMatchesTheContract) {
    SKIP_UNLESS_READY(false);
    BusRig r;
    r.start_daemon();
    BusClient client;
    std::string xml = client.proxy().Introspect();
    EXPECT_NE(xml.find("<interface name=\"org.oomguard1.Manager\">"), std::string::npos) << xml;
    for (const auto& [name, m] : contract()) {
        if (m.kind == "property")
            EXPECT_NE(xml.find("<property name=\"" + name + "\" type=\"" + m.signature +
                               "\" access=\"read\">"),
                      std::string::npos)
                << name << "\n"
                << xml;
        else
            EXPECT_NE(xml.find("<" + m.kind + " name=\"" + name + "\""), std::string::npos) << name;
    }
}

TEST(BusApi, EveryPropertyThroughTheProxy) {
    SKIP_UNLESS_READY(false);
    BusRig r;
    r.start_daemon();
    BusClient client;
    auto& p = client.proxy();
    EXPECT_EQ(p.MemAvailable(), 4096 * MiB);
    EXPECT_EQ(p.MemTotal(), 16384 * MiB);
    EXPECT_EQ(p.Threshold(), 500 * MiB);
    EXPECT_EQ(p.WarnThreshold(), 1000 * MiB);
    EXPECT_EQ(p.State(), "ok");
    EXPECT_EQ(p.Mode(), "sysrq");
    EXPECT_FALSE(p.DryRun());
    EXPECT_EQ(p.TriggerCount(), 0u);
    EXPECT_EQ(p.TriggerFailures(), 0u);
    EXPECT_EQ(p.LastTrigger(), 0u);
    auto target = p.LastTriggerTarget();
    EXPECT_EQ(std::get<0>(target), "");
    EXPECT_EQ(p.KernelOomKills(), 0u);
    auto victim = p.LastVictim();
    EXPECT_EQ(std::get<0>(victim), 0u);
    EXPECT_EQ(std::get<1>(victim), 0u);
    EXPECT_EQ(p.ConfigPath(), r.config_path);
    EXPECT_EQ(p.Version(), OOMGUARD_VERSION);
    EXPECT_EQ(p.LastError(), "");

    // A trigger changes the counters, the time and the state.
    uint64_t before = now_usec();
    r.proc.set_available(400 * MiB);
    ASSERT_TRUE(r.fifo.wait_byte(2s)) << r.daemon.log();
    ASSERT_TRUE(client.wait_for([&] { return p.TriggerCount() == 1; }, 2s)) << r.daemon.log();
    uint64_t after = now_usec();
    EXPECT_EQ(p.State(), "critical");
    EXPECT_EQ(p.MemAvailable(), 400 * MiB);
    EXPECT_GE(p.LastTrigger(), before);
    EXPECT_LE(p.LastTrigger(), after);

    // A failed trigger: counted, and LastError names the reason.
    std::string bad = r.config();
    bad.replace(bad.find(r.fifo.path()), r.fifo.path().size(), r.dir.file("missing/trigger"));
    bad.replace(bad.find("repeat_after = \"10s\""), 20, "repeat_after = \"50ms\"");
    r.write_config(bad);
    p.Reload();
    ASSERT_TRUE(client.wait_for([&] { return p.TriggerFailures() >= 1; }, 2s)) << r.daemon.log();
    EXPECT_NE(p.LastError().find("No such file or directory"), std::string::npos) << p.LastError();
}

TEST(BusApi, EveryPropertyThroughBusctl) {
    SKIP_UNLESS_READY(false);
    BusRig r;
    r.start_daemon();
    const std::map<std::string, std::string> expected = {
        {"MemAvailable", "t " + std::to_string(4096 * MiB)},
        {"MemTotal", "t " + std::to_string(16384 * MiB)},
        {"Threshold", "t " + std::to_string(500 * MiB)},
        {"WarnThreshold", "t " + std::to_string(1000 * MiB)},
        {"State", "s \"ok\""},
        {"Mode", "s \"sysrq\""},
        {"DryRun", "b false"},
        {"TriggerCount", "t 0"},
        {"TriggerFailures", "t 0"},
        {"LastTrigger", "t 0"},
        {"LastTriggerTarget", "(sss) \"\" \"\" \"\""},
        {"KernelOomKills", "t 0"},
        {"LastVictim", "(tussss) 0 0 \"\" \"\" \"\" \"\""},
        {"AuditFindings", "a(su) 0"},
        {"PredictedVictim", "(tusxssss) 0 0 \"\" 0 \"\" \"\" \"\" \"\""},
        {"ConfigPath", "s \"" + r.config_path + "\""},
        {"Version", std::string("s \"") + OOMGUARD_VERSION + "\""},
        {"LastError", "s \"\""},
    };
    for (const auto& [name, value] : expected) EXPECT_EQ(r.busctl_property(name), value) << name;
    // Every property in the contract is covered above.
    for (const auto& [name, m] : contract()) {
        if (m.kind == "property") {
            EXPECT_TRUE(expected.count(name)) << name << " not checked";
        }
    }

    r.proc.set_available(900 * MiB);
    ASSERT_TRUE(r.daemon.wait_log("warning: MemAvailable", 2s)) << r.daemon.log();
    EXPECT_EQ(r.busctl_property("State"), "s \"warning\"");
    EXPECT_EQ(r.busctl_property("MemAvailable"), "t " + std::to_string(900 * MiB));
    r.proc.set_available(300 * MiB);
    ASSERT_TRUE(r.fifo.wait_byte(2s));
    ASSERT_TRUE(r.daemon.wait_log("trigger: MemAvailable", 2s));
    EXPECT_EQ(r.busctl_property("TriggerCount"), "t 1");
    EXPECT_EQ(r.busctl_property("State"), "s \"critical\"");
}

TEST(BusApi, DryRunIsReportedAndTriggeredSaysDryRun) {
    SKIP_UNLESS_READY(false);
    BusRig r;
    r.start_daemon({"--dry-run"});
    BusClient client;
    EXPECT_TRUE(client.proxy().DryRun());
    EXPECT_EQ(r.busctl_property("DryRun"), "b true");
    r.proc.set_available(300 * MiB);
    ASSERT_TRUE(client.wait_signal("Triggered", 2s)) << r.daemon.log();
    EXPECT_EQ(client.proxy().last("Triggered")->args[4], "dry-run");
    EXPECT_EQ(r.fifo.drain(), 0u) << "dry-run wrote the trigger";
}

TEST(BusApi, MethodsThroughTheProxy) {
    SKIP_UNLESS_READY(false);
    BusRig r;
    r.start_daemon();
    BusClient client;
    auto& p = client.proxy();
    // No cgroup source in the daemon yet: an empty list for any valid count.
    EXPECT_TRUE(p.GetHeaviest(0).empty());
    EXPECT_TRUE(p.GetHeaviest(3).empty());
    EXPECT_TRUE(p.GetHeaviest(1000).empty());
    try {
        p.GetHeaviest(1001);
        ADD_FAILURE() << "GetHeaviest(1001) succeeded";
    } catch (const sdbus::Error& e) {
        EXPECT_EQ(e.getName(), "org.freedesktop.DBus.Error.InvalidArgs");
        EXPECT_NE(e.getMessage().find("count 1001 is out of range (0..1000)"), std::string::npos)
            << e.getMessage();
    }

    std::string dump = p.Dump();
    EXPECT_EQ(dump.rfind(std::string("oomguard ") + OOMGUARD_VERSION, 0), 0u) << dump;
    EXPECT_NE(dump.find("MemAvailable:         4.0 GiB (" + std::to_string(4096 * MiB) + " B)"),
              std::string::npos)
        << dump;
    EXPECT_NE(dump.find("Threshold:            500 MiB (" + std::to_string(500 * MiB) + " B)"),
              std::string::npos);
    EXPECT_NE(dump.find("Config:               " + r.config_path), std::string::npos);
    EXPECT_NE(dump.find("sysrq_trigger = \"" + r.fifo.path() + "\""), std::string::npos)
        << "effective config";

    // Reload as root applies a new threshold and announces it.
    r.write_config(r.config().replace(r.config().find("\"500MiB\""), 8, "\"600MiB\""));
    size_t changes = p.changes_of("Threshold");
    p.Reload();
    EXPECT_EQ(p.Threshold(), 600 * MiB);
    EXPECT_TRUE(client.wait_for([&] { return p.changes_of("Threshold") > changes; }, 2s));

    // A broken config: ReloadFailed naming the key; the old config stays.
    r.write_config(r.config("bogus_key = 1"));
    try {
        p.Reload();
        ADD_FAILURE() << "Reload of a broken config succeeded";
    } catch (const sdbus::Error& e) {
        EXPECT_EQ(e.getName(), "org.oomguard1.Error.ReloadFailed");
        EXPECT_NE(e.getMessage().find("memory.bogus_key"), std::string::npos) << e.getMessage();
    }
    EXPECT_EQ(p.Threshold(), 600 * MiB);
    EXPECT_NE(p.LastError().find("memory.bogus_key"), std::string::npos) << p.LastError();
    EXPECT_TRUE(r.daemon.running());
}

TEST(BusApi, MethodsThroughBusctl) {
    SKIP_UNLESS_READY(false);
    BusRig r;
    r.start_daemon();
    RunResult h = r.busctl(
        {"call", dbus::kBusName, dbus::kObjectPath, dbus::kInterface, "GetHeaviest", "u", "3"});
    EXPECT_EQ(h.exit_code, 0) << h.err;
    EXPECT_EQ(trim(h.out), "a(ssssstt) 0");
    RunResult bad = r.busctl(
        {"call", dbus::kBusName, dbus::kObjectPath, dbus::kInterface, "GetHeaviest", "u", "4000"});
    EXPECT_NE(bad.exit_code, 0);
    EXPECT_NE(bad.err.find("count 4000 is out of range"), std::string::npos) << bad.err;
    RunResult d = r.busctl({"call", dbus::kBusName, dbus::kObjectPath, dbus::kInterface, "Dump"});
    EXPECT_EQ(d.exit_code, 0) << d.err;
    EXPECT_EQ(d.out.rfind("s \"oomguard ", 0), 0u) << d.out;
    EXPECT_NE(d.out.find("State:                ok"), std::string::npos) << d.out;

    r.write_config(r.config().replace(r.config().find("\"500MiB\""), 8, "\"700MiB\""));
    RunResult rl =
        r.busctl({"call", dbus::kBusName, dbus::kObjectPath, dbus::kInterface, "Reload"});
    EXPECT_EQ(rl.exit_code, 0) << rl.err;
    EXPECT_EQ(r.busctl_property("Threshold"), "t " + std::to_string(700 * MiB));
    EXPECT_TRUE(r.daemon.wait_log("reload: reloaded", 1s)) << r.daemon.log();

    // Properties are read-only, for root too.
    RunResult set = r.busctl({"set-property", dbus::kBusName, dbus::kObjectPath, dbus::kInterface,
                              "DryRun", "b", "true"});
    EXPECT_NE(set.exit_code, 0);
    EXPECT_NE(set.err.find("not writable"), std::string::npos) << set.err;
}

TEST(BusApi, SignalsThroughTheProxy) {
    SKIP_UNLESS_READY(false);
    BusRig r;
    r.start_daemon();
    BusClient client;
    auto& p = client.proxy();
    client.pump(50ms);

    auto t0 = Clock::now();
    r.proc.set_available(900 * MiB);
    ASSERT_TRUE(client.wait_signal("Warning", 2s)) << r.daemon.log();
    EXPECT_EQ(p.last("Warning")->args,
              (std::vector<std::string>{std::to_string(900 * MiB), std::to_string(1000 * MiB)}));
    // State goes out at once, not at the MemAvailable rate.
    ASSERT_TRUE(client.wait_for([&] { return p.changes_of("State") >= 1; }, 2s));
    EXPECT_EQ(p.changes.back().values.count("State")
                  ? p.changes.back().values.at("State").get<std::string>()
                  : "",
              "warning");
    EXPECT_LT(p.changes.back().at - t0, 500ms);

    r.proc.set_available(400 * MiB);
    ASSERT_TRUE(client.wait_signal("Triggered", 2s)) << r.daemon.log();
    EXPECT_TRUE(r.fifo.wait_byte(1s));
    EXPECT_EQ(p.last("Triggered")->args,
              (std::vector<std::string>{std::to_string(400 * MiB), "", "", "", "sysrq"}));
    ASSERT_TRUE(client.wait_for([&] { return p.changes_of("TriggerCount") >= 1; }, 2s));
    bool saw_count = false;
    for (const auto& c : p.changes)
        if (c.values.count("TriggerCount"))
            saw_count = c.values.at("TriggerCount").get<uint64_t>() == 1;
    EXPECT_TRUE(saw_count);
    EXPECT_GE(p.changes_of("LastTrigger"), 1u);

    r.proc.set_available(3000 * MiB);
    ASSERT_TRUE(client.wait_signal("Recovered", 2s)) << r.daemon.log();
    EXPECT_EQ(p.last("Recovered")->args[0], std::to_string(3000 * MiB));
    EXPECT_GT(std::stoull(p.last("Recovered")->args[1]), 0u);
    ASSERT_TRUE(client.wait_for(
        [&] {
            for (auto it = p.changes.rbegin(); it != p.changes.rend(); ++it)
                if (it->values.count("State"))
                    return it->values.at("State").get<std::string>() == "ok";
            return false;
        },
        2s));
    // One of each: no duplicates.
    EXPECT_EQ(p.count("Warning"), 1u);
    EXPECT_EQ(p.count("Triggered"), 1u);
    EXPECT_EQ(p.count("Recovered"), 1u);
}

TEST(BusApi, SignalsThroughBusctlMonitor) {
    SKIP_UNLESS_READY(false);
    BusRig r;
    r.start_daemon();
    Process mon;
    mon.start({"busctl", "--address=" + r.bus.address(), "--json=short",
               "--match=type='signal',path='/org/oomguard1'", "monitor"},
              r.env(), r.dir.file("monitor.out"), r.dir.file("monitor.err"));
    ASSERT_TRUE(mon.wait_err("Monitoring", 3s) || mon.wait_out("Monitoring", 1s)) << mon.err();
    std::this_thread::sleep_for(100ms);
    r.proc.set_available(900 * MiB);
    ASSERT_TRUE(mon.wait_out("\"member\":\"Warning\"", 3s)) << mon.out();
    r.proc.set_available(450 * MiB);
    ASSERT_TRUE(mon.wait_out("\"member\":\"Triggered\"", 3s)) << mon.out();
    r.proc.set_available(2500 * MiB);
    ASSERT_TRUE(mon.wait_out("\"member\":\"Recovered\"", 3s)) << mon.out();
    mon.signal(SIGTERM);
    mon.wait_exit(2s);
    std::string out = mon.out();
    EXPECT_NE(out.find("\"member\":\"Warning\",\"payload\":{\"type\":\"tt\",\"data\":[" +
                       std::to_string(900 * MiB) + "," + std::to_string(1000 * MiB) + "]}"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("\"member\":\"Triggered\",\"payload\":{\"type\":\"tssss\",\"data\":[" +
                       std::to_string(450 * MiB) + ",\"\",\"\",\"\",\"sysrq\"]}"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("\"member\":\"Recovered\",\"payload\":{\"type\":\"tt\",\"data\":[" +
                       std::to_string(2500 * MiB) + ","),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("\"State\":{\"type\":\"s\",\"data\":\"critical\"}"), std::string::npos)
        << out;
}

TEST(BusApi, MemAvailableChangesAreRateLimited) {
    SKIP_UNLESS_READY(false);
    BusRig r;
    r.start_daemon();
    BusClient client;
    auto& p = client.proxy();
    // MemAvailable moves every 20ms for 2.5s (staying "ok"): at most one
    // PropertiesChanged with it per second, and at least one.
    auto end = Clock::now() + 2500ms;
    uint64_t mb = 5000;
    while (Clock::now() < end) {
        r.proc.set_available((mb += 7) * MiB);
        client.pump(20ms);
    }
    client.pump(200ms);
    size_t n = p.changes_of("MemAvailable");
    EXPECT_GE(n, 2u);
    EXPECT_LE(n, 4u) << "MemAvailable announced more often than once a second";
    std::vector<Clock::time_point> at;
    for (const auto& c : p.changes)
        if (c.values.count("MemAvailable")) at.push_back(c.at);
    for (size_t i = 1; i < at.size(); ++i) {
        EXPECT_GE(at[i] - at[i - 1], 900ms) << "announcements " << i - 1 << " and " << i;
    }
    // State flapping between ok and warning is announced every time, at once;
    // MemAvailable, which changes with it, still at most once a second.
    size_t states_before = p.changes_of("State"), mem_before = p.changes_of("MemAvailable");
    client.pump(1100ms);
    mem_before = p.changes_of("MemAvailable");
    for (int i = 0; i < 20; ++i) {
        r.proc.set_available((i % 2 ? 2500 : 900) * MiB);
        client.pump(100ms);
    }
    client.pump(200ms);
    EXPECT_GE(p.changes_of("State") - states_before, 15u) << "State changes were held back";
    EXPECT_LE(p.changes_of("MemAvailable") - mem_before, 3u)
        << "MemAvailable announced with every State change";
    // The last value announced is eventually the current one.
    r.proc.set_available(6000 * MiB);
    EXPECT_TRUE(client.wait_for(
        [&] {
            for (auto it = p.changes.rbegin(); it != p.changes.rend(); ++it)
                if (it->values.count("MemAvailable"))
                    return it->values.at("MemAvailable").get<uint64_t>() == 6000 * MiB;
            return false;
        },
        3s));
}
