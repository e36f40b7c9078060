// GetHeaviest, the Triggered target, the Victim signal, oomguardctl's pod table
// and the pod metrics: the real oomguard against the rig's fake cgroup v2 node
// (three pods, kubelet's cgroupfs layout), its pod log tree, and OOM kills
// written to the rig's kmsg file as the kernel writes them.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sstream>
#include <thread>

#include "bus_fixture.hpp"

using namespace oomguard::bustest;
namespace dbus = oomguard::dbus;
using oomguard::CgroupVersion;
using oomguard::QosClass;

namespace {

constexpr uint64_t GiB = 1ull << 30;
const KubeLayout kLayout;  // cgroupfs driver, containerd
// team-a/web-1 (Burstable): nginx (3 GiB of 4) and sidecar (100 MiB of 200).
const std::string kWebPod = "/" + kLayout.pod_dir(QosClass::Burstable, pod_uid(1));
const std::string kWeb = kWebPod + "/" + kLayout.container_name(container_id(11));
const std::string kSidecar = kWebPod + "/" + kLayout.container_name(container_id(12));
// team-b/batch-7 (BestEffort): 2 GiB, no limit.
const std::string kBatch = "/" + kLayout.pod_dir(QosClass::BestEffort, pod_uid(2));
// team-a/db-0 (Guaranteed): postgres, 1 GiB of 2.
const std::string kDb = "/" + kLayout.pod_dir(QosClass::Guaranteed, pod_uid(3));

struct ViewRig : BusRig {
    std::string metrics = dir.file("oomguard.prom");
    FakeCgroupFs fs{paths.cgroup_root, CgroupVersion::V2};
    FakePodLogs logs{dir.file("log")};
    unsigned kmsg_seq = 100;

    ViewRig() {
        fs.cgroup(kLayout.kubepods(), 0);
        fs.cgroup(kLayout.qos_dir(QosClass::Burstable), 0);
        fs.cgroup(kLayout.qos_dir(QosClass::BestEffort), 0);
        pod(kWebPod, "team-a", "web-1", pod_uid(1), 3 * GiB + 100 * MiB, 0);
        container(kWeb, "team-a", "web-1", pod_uid(1), "nginx", container_id(11), 3 * GiB, 4 * GiB);
        container(kSidecar, "team-a", "web-1", pod_uid(1), "sidecar", container_id(12), 100 * MiB,
                  200 * MiB);
        pod(kBatch, "team-b", "batch-7", pod_uid(2), 2 * GiB, 0);
        pod(kDb, "team-a", "db-0", pod_uid(3), 1 * GiB, 2 * GiB);
        container(kDb + "/" + kLayout.container_name(container_id(31)), "team-a", "db-0",
                  pod_uid(3), "postgres", container_id(31), 1 * GiB, 2 * GiB);
        write_config(config("", "pod_logs_dir = \"" + logs.pods_dir() +
                                    "\"\nscan_budget = \"1s\"\n[metrics]\ntextfile = \"" + metrics +
                                    "\"\ninterval = \"1s\"\n"));
    }
    void pod(const std::string& cg, const std::string& ns, const std::string& name,
             const std::string& uid, uint64_t ws, uint64_t limit) {
        fs.cgroup(cg.substr(1), ws, 0, limit);
        logs.pod(ns, name, uid);
    }
    void container(const std::string& cg, const std::string& ns, const std::string& pod,
                   const std::string& uid, const std::string& name, const std::string& id,
                   uint64_t ws, uint64_t limit) {
        fs.cgroup(cg.substr(1), ws, 0, limit);
        logs.container(ns, pod, uid, name, id);
    }
    void start() { start_daemon(); }
    // The kernel kills `pid` (`comm`) in `cgroup` at its own memory limit.
    void victim(int pid, const std::string& comm, const std::string& cgroup) {
        const std::string p = std::to_string(pid);
        const std::string a = std::to_string(kmsg_seq++), b = std::to_string(kmsg_seq++);
        const std::string records =
            "6," + a +
            ",2000000,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,"
            "mems_allowed=0,oom_memcg=" +
            cgroup + ",task_memcg=" + cgroup + ",task=" + comm + ",pid=" + p + ",uid=0\n3," + b +
            ",2000100,-;Memory cgroup out of memory: Killed process " + p + " (" + comm +
            ") total-vm:1000kB, anon-rss:900kB, file-rss:0kB, shmem-rss:0kB, UID:0 "
            "pgtables:10kB oom_score_adj:0\n";
        int fd = ::open(paths.kmsg.c_str(), O_WRONLY | O_APPEND);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::write(fd, records.data(), records.size()),
                  static_cast<ssize_t>(records.size()));
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
    // The heaviest pod's own row first, then its containers, heaviest first.
    EXPECT_EQ(std::get<0>(rows[1]), kWeb);
    EXPECT_EQ(std::get<1>(rows[1]), "team-a");
    EXPECT_EQ(std::get<2>(rows[1]), "web-1");
    EXPECT_EQ(std::get<3>(rows[1]), "nginx");
    EXPECT_EQ(std::get<4>(rows[1]), "Burstable");
    EXPECT_EQ(std::get<5>(rows[1]), 3 * GiB);
    EXPECT_EQ(std::get<6>(rows[1]), 4 * GiB);
    EXPECT_EQ(std::get<3>(rows[0]), "");  // a pod-level row
    EXPECT_EQ(std::get<6>(rows[0]), 0u);  // no limit
    // Three pods and the two containers of the heaviest.
    EXPECT_EQ(client.proxy().GetHeaviest(1000).size(), 5u);
    EXPECT_TRUE(client.proxy().GetHeaviest(0).empty());

    RunResult b = r.busctl(
        {"call", dbus::kBusName, dbus::kObjectPath, dbus::kInterface, "GetHeaviest", "u", "2"});
    EXPECT_EQ(b.exit_code, 0) << b.err;
    EXPECT_EQ(trim(b.out), "a(ssssstt) 2 \"" + kWebPod +
                               "\" \"team-a\" \"web-1\" \"\" \"Burstable\" " +
                               std::to_string(3 * GiB + 100 * MiB) + " 0 \"" + kWeb +
                               "\" \"team-a\" \"web-1\" \"nginx\" \"Burstable\" " +
                               std::to_string(3 * GiB) + " " + std::to_string(4 * GiB));
    std::string dump = client.proxy().Dump();
    EXPECT_NE(dump.find("3.0 GiB  team-a/web-1/nginx  qos=Burstable  limit=4.0 GiB  " + kWeb),
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
    Process mon;
    mon.start({"busctl", "--address=" + r.bus.address(), "--json=short",
               "--match=type='signal',interface='org.oomguard1.Manager'", "monitor"},
              r.env(), r.dir.file("monitor.out"), r.dir.file("monitor.err"));
    ASSERT_TRUE(mon.wait_err("Monitoring", 3s)) << mon.err();

    r.proc.set_available(400 * MiB);
    ASSERT_TRUE(client.wait_signal("Triggered", 2s)) << r.daemon.log();
    EXPECT_EQ(p.last("Triggered")->args, (std::vector<std::string>{std::to_string(400 * MiB), kWeb,
                                                                   "team-a", "web-1", "sysrq"}));
    auto t = p.LastTriggerTarget();
    EXPECT_EQ(std::get<0>(t), kWeb);
    EXPECT_EQ(std::get<1>(t), "team-a");
    EXPECT_EQ(std::get<2>(t), "web-1");
    EXPECT_EQ(r.busctl_property("LastTriggerTarget"),
              "(sss) \"" + kWeb + "\" \"team-a\" \"web-1\"");

    r.victim(4242, "stress", kWeb);
    ASSERT_TRUE(client.wait_signal("Victim", 2s)) << r.daemon.log();
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
    ASSERT_EQ(rows.size(), 6u) << top.out;
    EXPECT_EQ(rows[0], (std::vector<std::string>{"NAMESPACE", "POD", "CONTAINER", "QOS", "WORKING",
                                                 "SET", "LIMIT", "CGROUP"}));
    EXPECT_EQ(rows[2], (std::vector<std::string>{"team-a", "web-1", "nginx", "Burstable", "3.0",
                                                 "GiB", "4.0", "GiB", kWeb}));
    EXPECT_EQ(rows[4], (std::vector<std::string>{"team-b", "batch-7", "-", "BestEffort", "2.0",
                                                 "GiB", "none", kBatch}));
    // Columns line up: every row starts its CGROUP column at the same offset.
    size_t col = top.out.find("CGROUP");
    EXPECT_EQ(top.out.find(kWebPod) - top.out.find("team-a"), col) << top.out;
    EXPECT_EQ(r.ctl({"top", "-n", "1"}).out.find("batch-7"), std::string::npos);

    auto j = flatten_json(r.ctl({"top", "--json"}).out);
    EXPECT_EQ(j["#len"], "5");
    EXPECT_EQ(j["[1].cgroup"], "\"" + kWeb + "\"");
    EXPECT_EQ(j["[1].namespace"], "\"team-a\"");
    EXPECT_EQ(j["[1].pod"], "\"web-1\"");
    EXPECT_EQ(j["[1].container"], "\"nginx\"");
    EXPECT_EQ(j["[1].qos"], "\"Burstable\"");
    EXPECT_EQ(j["[1].working_set_bytes"], std::to_string(3 * GiB));
    EXPECT_EQ(j["[1].limit_bytes"], std::to_string(4 * GiB));
    EXPECT_EQ(j["[0].container"], "\"\"");

    r.proc.set_available(400 * MiB);
    ASSERT_TRUE(r.fifo.wait_byte(2s));
    r.victim(4242, "stress", kWeb);
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
    // The top 3 rows only: web-1 and its two containers, not the next pod.
    EXPECT_NE(s.out.find("sidecar"), std::string::npos) << s.out;
    EXPECT_EQ(s.out.find("batch-7"), std::string::npos) << s.out;

    j = flatten_json(r.ctl({"status", "--json"}).out);
    EXPECT_EQ(j["heaviest#len"], "3");
    EXPECT_EQ(j["heaviest[2].container"], "\"sidecar\"");
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
    Process mon;
    mon.start({ctl_binary(), "monitor"}, r.env(), r.dir.file("mon.out"), r.dir.file("mon.err"));
    ASSERT_TRUE(mon.wait_err("following", 3s)) << mon.err();
    r.proc.set_available(400 * MiB);
    EXPECT_TRUE(mon.wait_out(
        "Triggered: sysrq at MemAvailable 400 MiB; heaviest: team-a/web-1 (cgroup " + kWeb + ")",
        3s))
        << mon.out();
    r.victim(4242, "stress", kWeb);
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

    // The node changes (its three pods go, one comes) and oomguard looks again
    // (a reload; by itself every 10 s): the next interval write follows.
    for (const std::string& cg : {kWebPod, kBatch, kDb}) remove_tree(r.fs.memory_root() + cg);
    r.pod("/" + kLayout.pod_dir(QosClass::Burstable, pod_uid(4)), "ns-z", "solo", pod_uid(4), 12345,
          0);
    r.daemon.signal(SIGHUP);
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
