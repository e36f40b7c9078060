// GetHeaviest, the Triggered target, the Victim signal, oomguardctl's pod table
// and the pod metrics, with stand-in cgroup data: oomguard_bus_rig wires the
// daemon exactly like src/main.cpp, plus a HeaviestSource read from a file and
// victims read from a FIFO (what the cgroup code will provide).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sstream>
#include <thread>

#include "bus_fixture.hpp"

using namespace oomguard::bustest;
namespace dbus = oomguard::dbus;

namespace {

constexpr uint64_t GiB = 1ull << 30;
const std::string kWeb = "/kubepods/burstable/pod1111/aaaa";

struct ViewRig : BusRig {
    std::string heaviest = dir.file("heaviest.tsv");
    std::string victims = dir.file("victims.fifo");
    std::string metrics = dir.file("oomguard.prom");
    Child rig;

    ViewRig() {
        write_file(heaviest,
                   kWeb + "\tteam-a\tweb-1\tnginx\tburstable\t" + std::to_string(3 * GiB) + "\t" +
                       std::to_string(4 * GiB) + "\n" +
                       "/kubepods/besteffort/pod2222\tteam-b\tbatch-7\t\tbesteffort\t" +
                       std::to_string(2 * GiB) + "\t0\n" +
                       "/kubepods/pod3333/cccc\tteam-a\tdb-0\tpostgres\tguaranteed\t" +
                       std::to_string(1 * GiB) + "\t" + std::to_string(2 * GiB) + "\n" +
                       "/kubepods/burstable/pod1111/bbbb\tteam-a\tweb-1\tsidecar\tburstable\t" +
                       std::to_string(100 * MiB) + "\t" + std::to_string(200 * MiB) + "\n");
        ::mkfifo(victims.c_str(), 0600);
        write_config(
            config("", "\n[metrics]\ntextfile = \"" + metrics + "\"\ninterval = \"1s\"\n"));
    }
    ~ViewRig() {
        rig.signal(SIGTERM);
        rig.wait_exit(3s);
    }
    void start() {
        auto e = env();
        e["NOTIFY_SOCKET"] = notify.path();
        rig.start({rig_binary(), config_path, proc.root(), heaviest, victims}, e,
                  dir.file("rig.out"), dir.file("rig.err"));
        if (!notify.wait_for("READY=1", 5s))
            throw std::runtime_error("rig not READY:\n" + rig.err());
        drain_notify();
        if (!wait_name(true, 5s)) throw std::runtime_error("rig not on the bus:\n" + rig.err());
    }
    void victim(const std::string& tsv_line) {
        int fd = ::open(victims.c_str(), O_WRONLY | O_NONBLOCK);
        ASSERT_GE(fd, 0);
        std::string l = tsv_line + "\n";
        ASSERT_EQ(::write(fd, l.data(), l.size()), static_cast<ssize_t>(l.size()));
        ::close(fd);
    }
};

}  // namespace

TEST(CgroupView, GetHeaviestThroughTheProxyAndBusctl) {
    SKIP_UNLESS_READY(false);
    ViewRig r;
    r.start();
    BusClient client;
    auto rows = client.proxy().GetHeaviest(2);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(std::get<0>(rows[0]), kWeb);
    EXPECT_EQ(std::get<1>(rows[0]), "team-a");
    EXPECT_EQ(std::get<2>(rows[0]), "web-1");
    EXPECT_EQ(std::get<3>(rows[0]), "nginx");
    EXPECT_EQ(std::get<4>(rows[0]), "burstable");
    EXPECT_EQ(std::get<5>(rows[0]), 3 * GiB);
    EXPECT_EQ(std::get<6>(rows[0]), 4 * GiB);
    EXPECT_EQ(std::get<3>(rows[1]), "");  // a pod-level row
    EXPECT_EQ(std::get<6>(rows[1]), 0u);  // no limit
    EXPECT_EQ(client.proxy().GetHeaviest(1000).size(), 4u);
    EXPECT_TRUE(client.proxy().GetHeaviest(0).empty());

    RunResult b = r.busctl(
        {"call", dbus::kBusName, dbus::kObjectPath, dbus::kInterface, "GetHeaviest", "u", "2"});
    EXPECT_EQ(b.exit_code, 0) << b.err;
    EXPECT_EQ(trim(b.out),
              "a(ssssstt) 2 \"" + kWeb + "\" \"team-a\" \"web-1\" \"nginx\" \"burstable\" " +
                  std::to_string(3 * GiB) + " " + std::to_string(4 * GiB) +
                  " \"/kubepods/besteffort/pod2222\" \"team-b\" \"batch-7\" \"\" \"besteffort\" " +
                  std::to_string(2 * GiB) + " 0");
    std::string dump = client.proxy().Dump();
    EXPECT_NE(dump.find("3.0 GiB  team-a/web-1/nginx  qos=burstable  limit=4.0 GiB  " + kWeb),
              std::string::npos)
        << dump;
}

TEST(CgroupView, TriggeredNamesTheHeaviestAndVictimIsSignalled) {
    SKIP_UNLESS_READY(false);
    ViewRig r;
    r.start();
    BusClient client;
    auto& p = client.proxy();
    client.pump(50ms);
    Child mon;
    mon.start({"busctl", "--address=" + r.bus.address(), "--json=short",
               "--match=type='signal',interface='org.oomguard1.Manager'", "monitor"},
              r.env(), r.dir.file("monitor.out"), r.dir.file("monitor.err"));
    ASSERT_TRUE(mon.wait_err("Monitoring", 3s)) << mon.err();

    r.proc.set_available(400 * MiB);
    ASSERT_TRUE(client.wait_signal("Triggered", 2s)) << r.rig.err();
    EXPECT_EQ(p.last("Triggered")->args, (std::vector<std::string>{std::to_string(400 * MiB), kWeb,
                                                                   "team-a", "web-1", "sysrq"}));
    auto t = p.LastTriggerTarget();
    EXPECT_EQ(std::get<0>(t), kWeb);
    EXPECT_EQ(std::get<1>(t), "team-a");
    EXPECT_EQ(std::get<2>(t), "web-1");
    EXPECT_EQ(r.busctl_property("LastTriggerTarget"),
              "(sss) \"" + kWeb + "\" \"team-a\" \"web-1\"");

    r.victim("4242\tstress\t" + kWeb + "\tteam-a\tweb-1");
    ASSERT_TRUE(client.wait_signal("Victim", 2s)) << r.rig.err();
    EXPECT_EQ(p.last("Victim")->args,
              (std::vector<std::string>{"4242", "stress", kWeb, "team-a", "web-1"}));
    ASSERT_TRUE(client.wait_for(
        [&] { return p.changes_of("LastVictim") >= 1 && p.changes_of("KernelOomKills") >= 1; },
        2s));
    auto v = p.LastVictim();
    EXPECT_GT(std::get<0>(v), 0u);
    EXPECT_EQ(std::get<1>(v), 4242u);
    EXPECT_EQ(std::get<2>(v), "stress");
    EXPECT_EQ(std::get<3>(v), kWeb);
    EXPECT_EQ(p.KernelOomKills(), 1u);
    EXPECT_EQ(r.busctl_property("KernelOomKills"), "t 1");
    EXPECT_NE(r.busctl_property("LastVictim")
                  .find(" 4242 \"stress\" \"" + kWeb + "\" \"team-a\" \"web-1\""),
              std::string::npos);

    ASSERT_TRUE(mon.wait_out("\"member\":\"Victim\"", 3s)) << mon.out();
    mon.signal(SIGTERM);
    mon.wait_exit(2s);
    EXPECT_NE(
        mon.out().find(
            "\"member\":\"Victim\",\"payload\":{\"type\":\"ussss\",\"data\":[4242,\"stress\",\"" +
            kWeb + "\",\"team-a\",\"web-1\"]}"),
        std::string::npos)
        << mon.out();
    EXPECT_NE(mon.out().find("\"member\":\"Triggered\",\"payload\":{\"type\":\"tssss\",\"data\":[" +
                             std::to_string(400 * MiB) + ",\"" + kWeb +
                             "\",\"team-a\",\"web-1\",\"sysrq\"]}"),
              std::string::npos)
        << mon.out();
}

TEST(CgroupView, CtlShowsThePodsTheTargetAndTheVictim) {
    SKIP_UNLESS_READY(false);
    ViewRig r;
    r.start();
    RunResult top = r.ctl({"top"});
    ASSERT_EQ(top.exit_code, 0) << top.err;
    std::vector<std::vector<std::string>> rows;
    std::stringstream ss(top.out);
    std::string line;
    while (std::getline(ss, line)) {
        std::stringstream ls(line);
        std::vector<std::string> f;
        std::string w;
        while (ls >> w) f.push_back(w);
        rows.push_back(f);
    }
    ASSERT_EQ(rows.size(), 5u) << top.out;
    EXPECT_EQ(rows[0], (std::vector<std::string>{"NAMESPACE", "POD", "CONTAINER", "QOS", "WORKING",
                                                 "SET", "LIMIT", "CGROUP"}));
    EXPECT_EQ(rows[1], (std::vector<std::string>{"team-a", "web-1", "nginx", "burstable", "3.0",
                                                 "GiB", "4.0", "GiB", kWeb}));
    EXPECT_EQ(rows[2], (std::vector<std::string>{"team-b", "batch-7", "-", "besteffort", "2.0",
                                                 "GiB", "none", "/kubepods/besteffort/pod2222"}));
    // Columns line up: every row starts its CGROUP column at the same offset.
    size_t col = top.out.find("CGROUP");
    EXPECT_EQ(top.out.find(kWeb) - top.out.find("team-a"), col) << top.out;
    EXPECT_EQ(r.ctl({"top", "-n", "1"}).out.find("batch-7"), std::string::npos);

    auto j = flatten_json(r.ctl({"top", "--json"}).out);
    EXPECT_EQ(j["#len"], "4");
    EXPECT_EQ(j["[0].cgroup"], "\"" + kWeb + "\"");
    EXPECT_EQ(j["[0].namespace"], "\"team-a\"");
    EXPECT_EQ(j["[0].pod"], "\"web-1\"");
    EXPECT_EQ(j["[0].container"], "\"nginx\"");
    EXPECT_EQ(j["[0].qos"], "\"burstable\"");
    EXPECT_EQ(j["[0].working_set_bytes"], std::to_string(3 * GiB));
    EXPECT_EQ(j["[0].limit_bytes"], std::to_string(4 * GiB));
    EXPECT_EQ(j["[1].container"], "\"\"");

    r.proc.set_available(400 * MiB);
    ASSERT_TRUE(r.fifo.wait_byte(2s));
    r.victim("4242\tstress\t" + kWeb + "\tteam-a\tweb-1");
    ASSERT_TRUE(wait_name(true, 1s));
    std::this_thread::sleep_for(200ms);
    RunResult s = r.ctl({"status"});
    ASSERT_EQ(s.exit_code, 0) << s.err;
    EXPECT_NE(s.out.find("; heaviest then: team-a/web-1 (" + kWeb + ")\n"), std::string::npos)
        << s.out;
    EXPECT_NE(s.out.find("   Last victim: pid 4242 (stress) in team-a/web-1 (" + kWeb + "); "),
              std::string::npos)
        << s.out;
    EXPECT_NE(s.out.find("     OOM kills: 1 by the kernel"), std::string::npos) << s.out;
    // The top 3 only.
    EXPECT_NE(s.out.find("db-0"), std::string::npos) << s.out;
    EXPECT_EQ(s.out.find("sidecar"), std::string::npos) << s.out;

    j = flatten_json(r.ctl({"status", "--json"}).out);
    EXPECT_EQ(j["heaviest#len"], "3");
    EXPECT_EQ(j["heaviest[2].pod"], "\"db-0\"");
    EXPECT_EQ(j["last_trigger_target.cgroup"], "\"" + kWeb + "\"");
    EXPECT_EQ(j["last_victim.pid"], "4242");
    EXPECT_EQ(j["last_victim.name"], "\"stress\"");
    EXPECT_EQ(j["last_victim.namespace"], "\"team-a\"");
    EXPECT_EQ(j["kernel_oom_kills"], "1");
}

TEST(CgroupView, CtlMonitorShowsTheTargetAndTheVictim) {
    SKIP_UNLESS_READY(false);
    ViewRig r;
    r.start();
    Child mon;
    mon.start({ctl_binary(), "monitor"}, r.env(), r.dir.file("mon.out"), r.dir.file("mon.err"));
    ASSERT_TRUE(mon.wait_err("following", 3s)) << mon.err();
    r.proc.set_available(400 * MiB);
    EXPECT_TRUE(mon.wait_out(
        "Triggered: sysrq at MemAvailable 400 MiB; heaviest: team-a/web-1 (cgroup " + kWeb + ")",
        3s))
        << mon.out();
    r.victim("4242\tstress\t" + kWeb + "\tteam-a\tweb-1");
    EXPECT_TRUE(mon.wait_out(
        "Victim: the kernel killed pid 4242 (stress) in team-a/web-1 (cgroup " + kWeb + ")", 3s))
        << mon.out();
    mon.signal(SIGINT);
    EXPECT_EQ(mon.wait_exit(3s), 0);
}

TEST(CgroupView, MetricsExportTheHeaviestPods) {
    SKIP_UNLESS_READY(false);
    ViewRig r;
    r.start();
    auto deadline = Clock::now() + 3s;
    std::string text;
    while (Clock::now() < deadline) {
        text = read_file(r.metrics);
        if (text.find("oomguard_heaviest_pod_working_set_bytes{") != std::string::npos) break;
        std::this_thread::sleep_for(20ms);
    }
    EXPECT_NE(text.find("# TYPE oomguard_heaviest_pod_working_set_bytes gauge\n"),
              std::string::npos)
        << text;
    // web-1 has no pod-level row: its containers add up. batch-7's pod-level row counts as is.
    EXPECT_NE(
        text.find("oomguard_heaviest_pod_working_set_bytes{namespace=\"team-a\",pod=\"web-1\"} " +
                  std::to_string(3 * GiB + 100 * MiB) + "\n"),
        std::string::npos)
        << text;
    EXPECT_NE(
        text.find("oomguard_heaviest_pod_working_set_bytes{namespace=\"team-b\",pod=\"batch-7\"} " +
                  std::to_string(2 * GiB) + "\n"),
        std::string::npos)
        << text;
    EXPECT_NE(
        text.find("oomguard_heaviest_pod_working_set_bytes{namespace=\"team-a\",pod=\"db-0\"} " +
                  std::to_string(1 * GiB) + "\n"),
        std::string::npos)
        << text;
    EXPECT_EQ(count_of(text, "oomguard_heaviest_pod_working_set_bytes{"), 3u) << text;
    // Heaviest first.
    EXPECT_LT(text.find("pod=\"web-1\""), text.find("pod=\"batch-7\""));
    EXPECT_LT(text.find("pod=\"batch-7\""), text.find("pod=\"db-0\""));

    // The source changes: the next interval write follows.
    write_file(r.heaviest, "/kubepods/x\tns-z\tsolo\t\tburstable\t12345\t0\n");
    deadline = Clock::now() + 3s;
    while (Clock::now() < deadline &&
           read_file(r.metrics).find("pod=\"solo\"} 12345") == std::string::npos)
        std::this_thread::sleep_for(20ms);
    text = read_file(r.metrics);
    EXPECT_NE(
        text.find(
            "oomguard_heaviest_pod_working_set_bytes{namespace=\"ns-z\",pod=\"solo\"} 12345\n"),
        std::string::npos)
        << text;
    EXPECT_EQ(count_of(text, "oomguard_heaviest_pod_working_set_bytes{"), 1u) << text;
}
