// Unit tests for the bus-side pieces that need no bus: the address parser,
// the bus probe (against a socket the test serves), the metrics text, the
// Dump text, oomguardctl's renderings and JSON writer, the per-caller rate
// limit and the daemon thread's BusPublisher.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "bus/bus_probe.hpp"
#include "bus/bus_publisher.hpp"
#include "bus/dump.hpp"
#include "bus/rate_limiter.hpp"
#include "bus/system_bus_address.hpp"
#include "ctl/json_writer.hpp"
#include "ctl/status_report.hpp"
#include "daemon.hpp"
#include "service/metrics.hpp"
#include "support/files.hpp"

using namespace oomguard;

namespace {

constexpr uint64_t MiB = 1ull << 20;

using oomguard::test::TempDir;

int listen_unix(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 4) != 0)
        return -1;
    return fd;
}

BusProbe::Step advance_for(BusProbe& p, int ms, std::string& err) {
    pollfd f{p.fd(), POLLIN, 0};
    ::poll(&f, 1, ms);
    return p.advance(f.revents, err);
}

DaemonState sample_state() {
    DaemonState s;
    s.sample.mem_available = 900 * MiB;
    s.sample.mem_total = 16384 * MiB;
    s.levels.min = 500 * MiB;
    s.levels.warn = 1000 * MiB;
    s.levels.recover = 2000 * MiB;
    s.state = MemState::Warning;
    s.triggers_total = 3;
    s.trigger_failures_total = 1;
    s.kernel_oom_kills_total = 1;
    s.oom_kills_total = 2;
    s.last_trigger_realtime_usec = 1700000000123456ull;
    s.config_path = "/etc/oomguard.toml";
    return s;
}

}  // namespace

TEST(SystemBusAddress, UnixPathIsExtractedAndDecoded) {
    EXPECT_EQ(unix_socket_path("unix:path=/run/dbus/system_bus_socket"),
              "/run/dbus/system_bus_socket");
    EXPECT_EQ(unix_socket_path("unix:path=/tmp/a%20b,guid=0123"), "/tmp/a b");
    EXPECT_EQ(unix_socket_path("unix:guid=0123,path=/x"), "/x");
    EXPECT_EQ(unix_socket_path("unix:path=/x;"), "/x");
    EXPECT_EQ(unix_socket_path("unix:abstract=/x"), std::nullopt);
    EXPECT_EQ(unix_socket_path("tcp:host=localhost,port=1"), std::nullopt);
    EXPECT_EQ(unix_socket_path("unix:path=/a;unix:path=/b"), std::nullopt);
    EXPECT_EQ(unix_socket_path("unix:path=/bad%2"), std::nullopt);
    EXPECT_EQ(unix_socket_path("unix:path=/bad%zz"), std::nullopt);
    EXPECT_EQ(unix_socket_path("unix:path="), std::nullopt);
    EXPECT_EQ(unix_socket_path(""), std::nullopt);
}

TEST(SystemBusAddress, EnvironmentOverridesTheDefault) {
    ::setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/tmp/x", 1);
    EXPECT_EQ(system_bus_address(), "unix:path=/tmp/x");
    ::unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
    EXPECT_EQ(system_bus_address(), kDefaultSystemBusAddress);
}

TEST(BusProbe, AnsweredWhenTheDaemonSaysOk) {
    TempDir d;
    std::string sock = d.path() + "/bus.sock";
    int lfd = listen_unix(sock);
    ASSERT_GE(lfd, 0);
    BusProbe p;
    ASSERT_TRUE(p.start(sock, 1000).ok());
    std::string err;
    EXPECT_EQ(advance_for(p, 50, err), BusProbe::Step::Pending) << "nobody answered yet";
    int c = ::accept(lfd, nullptr, nullptr);
    char buf[64] = {};
    ssize_t n = ::read(c, buf, sizeof buf);
    // NUL, then the EXTERNAL mechanism with the uid "1000" hex-encoded.
    EXPECT_EQ(std::string(buf, static_cast<size_t>(n)),
              std::string("\0AUTH EXTERNAL 31303030\r\n", 25));
    ASSERT_EQ(::write(c, "OK 0123", 7), 7);
    EXPECT_EQ(advance_for(p, 100, err), BusProbe::Step::Pending) << "half a line";
    ASSERT_EQ(::write(c, "abcdef\r\n", 8), 8);
    EXPECT_EQ(advance_for(p, 100, err), BusProbe::Step::Answered) << err;
    ::close(c);
    ::close(lfd);
}

TEST(BusProbe, FailsOnRejectionHangUpAndMissingSocket) {
    TempDir d;
    std::string sock = d.path() + "/bus.sock";
    BusProbe p;
    Status st = p.start(sock, 0);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().message, "connect " + sock + ": No such file or directory");

    int lfd = listen_unix(sock);
    ASSERT_TRUE(p.start(sock, 0).ok());
    int c = ::accept(lfd, nullptr, nullptr);
    ASSERT_EQ(::write(c, "REJECTED EXTERNAL\r\n", 19), 19);
    std::string err;
    EXPECT_EQ(advance_for(p, 100, err), BusProbe::Step::Failed);
    EXPECT_NE(err.find("refused authentication: REJECTED EXTERNAL"), std::string::npos) << err;
    ::close(c);

    ASSERT_TRUE(p.start(sock, 0).ok());
    c = ::accept(lfd, nullptr, nullptr);
    ::close(c);
    err.clear();
    EXPECT_EQ(advance_for(p, 100, err), BusProbe::Step::Failed);
    EXPECT_NE(err.find("closed the connection"), std::string::npos) << err;
    ::close(lfd);
}

TEST(MetricsRender, FamiliesHaveHelpAndTypeAndValues) {
    std::string out;
    MetricsWriter::render(sample_state(), {}, 4, out);
    EXPECT_NE(out.find("# HELP oomguard_mem_available_bytes "), std::string::npos);
    EXPECT_NE(
        out.find(
            "# TYPE oomguard_mem_available_bytes gauge\noomguard_mem_available_bytes 943718400\n"),
        std::string::npos)
        << out;
    EXPECT_NE(out.find("# TYPE oomguard_triggers_total counter\noomguard_triggers_total 3\n"),
              std::string::npos);
    EXPECT_NE(out.find("oomguard_trigger_failures_total 1\n"), std::string::npos);
    // Node-wide and memcg kills apart; their sum is D-Bus KernelOomKills (2).
    EXPECT_NE(out.find("oomguard_node_oom_kills_total 1\n"), std::string::npos) << out;
    EXPECT_NE(out.find("oomguard_memcg_oom_kills_total 1\n"), std::string::npos);
    EXPECT_NE(out.find("oomguard_last_trigger_timestamp_seconds 1700000000.123456\n"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("oomguard_state{state=\"warning\"} 1\n"), std::string::npos);
    EXPECT_NE(out.find("oomguard_state{state=\"ok\"} 0\n"), std::string::npos);
    EXPECT_NE(out.find("oomguard_metrics_write_failures_total 4\n"), std::string::npos);
    EXPECT_EQ(out.find("heaviest"), std::string::npos) << "no pods: no family";
    EXPECT_EQ(out.back(), '\n');
    // Every TYPE has its HELP right before it.
    size_t types = 0;
    for (size_t pos = out.find("# TYPE "); pos != std::string::npos;
         pos = out.find("# TYPE ", pos + 1)) {
        ++types;
        std::string name = out.substr(pos + 7, out.find(' ', pos + 7) - pos - 7);
        size_t prev = out.rfind('\n', pos - 2);
        prev = prev == std::string::npos ? 0 : prev + 1;
        EXPECT_EQ(out.compare(prev, 7 + name.size(), "# HELP " + name), 0) << name;
    }
    EXPECT_EQ(types, 18u);  // 16 + the two prediction counters (issue 14)
}

TEST(MetricsRender, PodsAreAggregatedRankedCappedAndEscaped) {
    std::vector<HeaviestRow> rows;
    rows.push_back({"/a/c1", "ns", "web", "c1", "burstable", 100, 0});
    rows.push_back({"/a/c2", "ns", "web", "c2", "burstable", 50, 0});
    rows.push_back({"/b", "ns", "batch", "", "besteffort", 120, 0});
    rows.push_back({"/b/c", "ns", "batch", "c", "besteffort", 999, 0});  // the pod row wins
    rows.push_back({"/x", "", "", "", "", 5000, 0});                     // not a pod: skipped
    rows.push_back({"/q", "we\"ird\\ns", "line\nbreak", "", "", 7, 0});
    for (int i = 0; i < 12; ++i)
        rows.push_back({"/p" + std::to_string(i), "many", "p" + std::to_string(i), "", "", 1, 0});
    std::string out;
    MetricsWriter::render(sample_state(), rows, 0, out);
    EXPECT_NE(
        out.find("oomguard_heaviest_pod_working_set_bytes{namespace=\"ns\",pod=\"web\"} 150\n"),
        std::string::npos)
        << out;
    EXPECT_NE(
        out.find("oomguard_heaviest_pod_working_set_bytes{namespace=\"ns\",pod=\"batch\"} 120\n"),
        std::string::npos)
        << out;
    EXPECT_NE(out.find("{namespace=\"we\\\"ird\\\\ns\",pod=\"line\\nbreak\"} 7\n"),
              std::string::npos)
        << out;
    EXPECT_LT(out.find("pod=\"web\""), out.find("pod=\"batch\"")) << "heaviest first";
    size_t n = 0;
    for (size_t pos = out.find("oomguard_heaviest_pod_working_set_bytes{");
         pos != std::string::npos;
         pos = out.find("oomguard_heaviest_pod_working_set_bytes{", pos + 1))
        ++n;
    EXPECT_EQ(n, MetricsWriter::kMaxPods);
}

TEST(MetricsWriter, ReplacesTheFileAndNamesTheFailingPath) {
    TempDir d;
    Journal j(LogTarget::Stderr);
    Config::Metrics m;
    m.textfile = d.path() + "/oomguard.prom";
    MetricsWriter w(j, m);
    DaemonState s = sample_state();
    ASSERT_TRUE(w.write(s).ok());
    struct stat st;
    ASSERT_EQ(::stat(m.textfile.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0644u);
    EXPECT_NE(::stat((d.path() + "/.oomguard.prom.tmp").c_str(), &st), 0)
        << "temp file left behind";

    m.textfile = d.path() + "/missing/oomguard.prom";
    MetricsWriter bad(j, m);
    Status r = bad.write(s);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message, "metrics: open " + d.path() +
                                     "/missing/.oomguard.prom.tmp: No such file or directory");
    Config::Metrics off;
    EXPECT_TRUE(MetricsWriter(j, off).write(s).ok()) << "no textfile: nothing to do";
}

TEST(DumpText, HasStateCountersVictimPodsAndConfig) {
    DaemonState s = sample_state();
    OomKill& v = s.last_oom_kill;
    v.pid = 77;
    v.task = "stress";
    v.cgroup.path = "/kubepods/pod1/c";
    v.cgroup.pod_namespace = "team";
    v.cgroup.pod_name = "web-1";
    v.realtime_usec = 1700000000000000ull;
    s.oom_kills_total = 2;
    Config c;
    DumpInput in(s, c);
    in.heaviest_available = true;
    in.heaviest = {
        {"/kubepods/pod1/c", "team", "web-1", "nginx", "burstable", 3ull << 30, 4ull << 30}};
    std::string d = render_dump(in);
    EXPECT_NE(d.find("State:                warning\n"), std::string::npos) << d;
    EXPECT_NE(d.find("Threshold:            500 MiB (524288000 B)\n"), std::string::npos) << d;
    EXPECT_NE(d.find("Trigger failures:     1\n"), std::string::npos) << d;
    EXPECT_NE(
        d.find("Last victim:          pid 77 (stress) in team/web-1, cgroup /kubepods/pod1/c, at "),
        std::string::npos)
        << d;
    EXPECT_NE(d.find("3.0 GiB  team/web-1/nginx  qos=burstable  limit=4.0 GiB  /kubepods/pod1/c\n"),
              std::string::npos)
        << d;
    EXPECT_NE(d.find("Effective config:\n[memory]\n"), std::string::npos) << d;
    in.heaviest_available = false;
    EXPECT_NE(render_dump(in).find("(no cgroup data source)"), std::string::npos);
}

// Red-team finding 4: "OOM request ignored" (sysrq f found no eligible task)
// and the kill-cgroup kills were counted but shown nowhere.
TEST(MetricsRender, ShowsIgnoredOomRequestsAndCgroupKills) {
    DaemonState s = sample_state();
    s.oom_requests_ignored_total = 4;
    s.cgroup_kills_total = 5;
    std::string out;
    MetricsWriter::render(s, {}, 4, out);
    EXPECT_NE(out.find("# TYPE oomguard_oom_requests_ignored_total counter\n"
                       "oomguard_oom_requests_ignored_total 4\n"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("oomguard_cgroup_kills_total 5\n"), std::string::npos) << out;
    Config c;
    DumpInput in(s, c);
    std::string d = render_dump(in);
    EXPECT_NE(d.find("OOM requests ignored: 4"), std::string::npos) << d;
    EXPECT_NE(d.find("Cgroup kills:         5\n"), std::string::npos) << d;
}

TEST(JsonWriter, NestsAndEscapes) {
    ctl::JsonWriter j;
    j.begin_object()
        .field("s", "a\"b\\c\n\t\x01")
        .field("n", uint64_t{18446744073709551615ull})
        .field("b", false);
    j.key("arr").begin_array();
    j.begin_object().field("x", uint32_t{1}).end_object();
    j.begin_object().end_object();
    j.value("y").null();
    j.end_array();
    j.key("o").begin_object().field("k", "v").end_object();
    j.end_object();
    EXPECT_EQ(j.str(),
              "{\"s\":\"a\\\"b\\\\c\\n\\t\\u0001\",\"n\":18446744073709551615,\"b\":false,"
              "\"arr\":[{\"x\":1},{},\"y\",null],\"o\":{\"k\":\"v\"}}");
}

TEST(StatusReport, TextAndJson) {
    ctl::StatusReport r;
    r.version = "9.9";
    r.state = "critical";
    r.mode = "sysrq";
    r.config_path = "/etc/oomguard.toml";
    r.mem_available = 400 * MiB;
    r.mem_total = 16384 * MiB;
    r.threshold = 500 * MiB;
    r.trigger_count = 2;
    r.trigger_failures = 1;
    r.last_trigger_usec = 1000000000000000ull;
    r.target_cgroup = "/kubepods/p";
    r.target_namespace = "ns";
    r.target_pod = "web";
    r.victim.realtime_usec = 1000000000000000ull;
    r.victim.pid = 5;
    r.victim.task = "x";
    r.last_error = "trigger failed";
    r.top = {{"/kubepods/p", "ns", "web", "", "guaranteed", 2ull << 30, 0}};
    const uint64_t now = 1000000000000000ull + 62'000'000ull;
    std::string t = ctl::render_status_text(r, now);
    EXPECT_EQ(t.rfind("● oomguard 9.9: critical\n", 0), 0u) << t;
    EXPECT_NE(t.find("     Threshold: 500 MiB (100 MiB BELOW it)\n"), std::string::npos) << t;
    EXPECT_NE(t.find("      Triggers: 2 (1 failed)\n"), std::string::npos) << t;
    EXPECT_NE(t.find("; 1min 2s ago; heaviest then: ns/web (/kubepods/p)\n"), std::string::npos)
        << t;
    EXPECT_NE(t.find("   Last victim: pid 5 (x) in -; 1min 2s ago\n"), std::string::npos) << t;
    EXPECT_NE(t.find("    Last error: trigger failed\n"), std::string::npos) << t;
    EXPECT_NE(t.find("    Warning at: none\n"), std::string::npos) << t;
    EXPECT_NE(t.find("  ns         web  -          guaranteed      2.0 GiB   none  /kubepods/p\n"),
              std::string::npos)
        << t;
    std::string js = ctl::render_status_json(r);
    EXPECT_NE(js.find("\"last_trigger_target\":{\"cgroup\":\"/kubepods/"
                      "p\",\"namespace\":\"ns\",\"pod\":\"web\"}"),
              std::string::npos)
        << js;
    EXPECT_NE(js.find("\"last_victim\":{\"time_usec\":1000000000000000,\"pid\":5,\"name\":\"x\""),
              std::string::npos)
        << js;
    EXPECT_NE(
        js.find("\"heaviest\":[{\"cgroup\":\"/kubepods/p\",\"namespace\":\"ns\",\"pod\":\"web\","
                "\"container\":\"\",\"qos\":\"guaranteed\",\"working_set_bytes\":2147483648,"
                "\"limit_bytes\":0}]}"),
        std::string::npos)
        << js;
    // No prediction yet: said so, and null in JSON.
    EXPECT_NE(t.find("Would kill now: not scanned"), std::string::npos) << t;
    EXPECT_NE(js.find("\"predicted_victim\":null"), std::string::npos) << js;
    // With one (issue 14).
    r.predicted.pid = 77;
    r.predicted.comm = "batch";
    r.predicted.oom_score = 1100;
    r.predicted.cgroup.path = "/kubepods/besteffort/pod1/c";
    r.predicted.cgroup.pod_namespace = "team-b";
    r.predicted.cgroup.pod_name = "batch-7";
    r.predicted.cgroup.container_name = "c0";
    r.predicted_usec = now - 3'000'000ull;
    t = ctl::render_status_text(r, now);
    EXPECT_NE(t.find("Would kill now: pid 77 (batch) in team-b/batch-7, container c0, oom_score "
                     "1100; scanned 3s ago\n"),
              std::string::npos)
        << t;
    js = ctl::render_status_json(r);
    EXPECT_NE(js.find("\"predicted_victim\":{\"time_usec\":" + std::to_string(now - 3'000'000ull) +
                      ",\"pid\":77,\"name\":\"batch\",\"oom_score\":1100,\"cgroup\":\"/kubepods/"
                      "besteffort/pod1/c\",\"namespace\":\"team-b\",\"pod\":\"batch-7\",\"container\":"
                      "\"c0\"}"),
              std::string::npos)
        << js;
    EXPECT_NE(t.find("Node audit: no findings\n"), std::string::npos) << t;
    r.audit = {{"critical-oom-score-adj", 2}, {"panic-on-oom", 1}};
    t = ctl::render_status_text(r, now);
    EXPECT_NE(t.find("Node audit: critical-oom-score-adj (2), panic-on-oom; details and fixes: "
                     "journalctl -u oomguard MESSAGE_ID=efa13e236c2b4aae95f0abaf3e7ff5ec\n"),
              std::string::npos)
        << t;
    js = ctl::render_status_json(r);
    EXPECT_NE(js.find("\"audit_findings\":{\"critical-oom-score-adj\":2,\"panic-on-oom\":1}"),
              std::string::npos)
        << js;
    EXPECT_EQ(ctl::render_top_json({}), "[]\n");
    EXPECT_EQ(ctl::format_time(0), "never");
    EXPECT_EQ(ctl::format_ago(10, 5), "just now");
}

// ---- the per-caller token bucket ------------------------------------------

TEST(RateLimiter, BurstThenRefillPerCaller) {
    RateLimiter r(20, 40);
    const Duration t0 = std::chrono::seconds(100);
    int ok = 0;
    for (int i = 0; i < 100; ++i) ok += r.admit(":1.1", t0);
    EXPECT_EQ(ok, 40) << "the burst";
    EXPECT_TRUE(r.admit(":1.2", t0)) << "another caller has its own bucket";
    ok = 0;
    for (int i = 0; i < 100; ++i) ok += r.admit(":1.1", t0 + std::chrono::milliseconds(500));
    EXPECT_EQ(ok, 10) << "20 a second refill";
    ok = 0;
    for (int i = 0; i < 100; ++i) ok += r.admit(":1.1", t0 + std::chrono::seconds(60));
    EXPECT_EQ(ok, 40) << "never more than the burst";
}

TEST(RateLimiter, ForgetsIdleCallersInsteadOfGrowing) {
    RateLimiter r(20, 40);
    Duration t = std::chrono::seconds(1);
    for (size_t i = 0; i < RateLimiter::kMaxCallers + 100; ++i) {
        r.admit(":1." + std::to_string(i), t);
        t += std::chrono::milliseconds(10);
    }
    EXPECT_LE(r.callers(), RateLimiter::kMaxCallers);
}

// ---- the daemon thread's half: requests done at loop level -----------------

TEST(BusPublisher, ReloadRequestsAreDoneByTheLoopAndAnswered) {
    TempDir d;
    std::filesystem::create_directories(d.path() + "/proc");
    {
        FILE* f = std::fopen((d.path() + "/proc/meminfo").c_str(), "w");
        std::fprintf(f, "MemTotal:       16777216 kB\nMemAvailable:    4194304 kB\n");
        std::fclose(f);
    }
    const std::string cfg = d.path() + "/oomguard.toml";
    auto write_cfg = [&](const std::string& text) {
        FILE* f = std::fopen(cfg.c_str(), "w");
        std::fputs(text.c_str(), f);
        std::fclose(f);
    };
    write_cfg("[memory]\nmin_available = \"500MiB\"\n[action]\nsysrq_trigger = \"" + d.path() +
              "/trigger\"\n[poll]\npsi = false\n[paths]\nproc = \"" + d.path() + "/proc\"\n");
    DaemonOptions o;
    o.config_path = cfg;
    o.log_target = LogTarget::Stderr;
    o.mlock = false;
    o.allow_insecure_config = true;
    Daemon daemon(o);
    ASSERT_TRUE(daemon.init());
    BusChannel ch;
    BusPublisher pub(daemon, ch);
    daemon.add_sink(&pub);  // as src/main.cpp does
    pub.on_config(daemon.state(), daemon.config());
    {
        std::lock_guard<std::mutex> g(ch.mutex);
        EXPECT_EQ(ch.version, 1u);
        EXPECT_EQ(ch.snapshot.config->memory.min_available.to_string(), "500 MiB");
        ch.requests.push_back({7, RequestKind::Reload});
        ch.requests.push_back({8, RequestKind::Reload});  // queued together: one reload
    }
    ch.to_daemon.wake();
    write_cfg("[memory]\nmin_available = \"600MiB\"\n[action]\nsysrq_trigger = \"" + d.path() +
              "/trigger\"\n[poll]\npsi = false\n[paths]\nproc = \"" + d.path() + "/proc\"\n");
    pub.dispatch(POLLIN);
    {
        std::lock_guard<std::mutex> g(ch.mutex);
        ASSERT_EQ(ch.results.size(), 2u);
        EXPECT_EQ(ch.results[0].id, 7u);
        EXPECT_TRUE(ch.results[0].ok) << ch.results[0].error;
        EXPECT_EQ(ch.results[1].id, 8u);
        EXPECT_EQ(ch.snapshot.config->memory.min_available.to_string(), "600 MiB");
        ch.results.clear();
        ch.requests.push_back({9, RequestKind::Reload});
    }
    write_cfg("[memory]\nmin_available = 5\n");
    pub.dispatch(0);
    {
        std::lock_guard<std::mutex> g(ch.mutex);
        ASSERT_EQ(ch.results.size(), 1u);
        EXPECT_FALSE(ch.results[0].ok);
        EXPECT_NE(ch.results[0].error.find("min_available"), std::string::npos)
            << ch.results[0].error;
        EXPECT_EQ(ch.snapshot.config->memory.min_available.to_string(), "600 MiB")
            << "a bad config keeps the old one";
    }
}

TEST(BusPublisher, NeverWaitsForABusyChannel) {
    TempDir d;
    std::filesystem::create_directories(d.path() + "/proc");
    {
        FILE* f = std::fopen((d.path() + "/proc/meminfo").c_str(), "w");
        std::fprintf(f, "MemTotal:       16777216 kB\nMemAvailable:    4194304 kB\n");
        std::fclose(f);
        f = std::fopen((d.path() + "/oomguard.toml").c_str(), "w");
        std::fprintf(f, "[poll]\npsi = false\n[paths]\nproc = \"%s/proc\"\n", d.path().c_str());
        std::fclose(f);
    }
    DaemonOptions o;
    o.config_path = d.path() + "/oomguard.toml";
    o.log_target = LogTarget::Stderr;
    o.mlock = false;
    o.allow_insecure_config = true;
    Daemon daemon(o);
    ASSERT_TRUE(daemon.init());
    BusChannel ch;
    BusPublisher pub(daemon, ch);
    {
        std::lock_guard<std::mutex> held(ch.mutex);  // the bus thread is copying
        pub.on_warning(daemon.state());
        EXPECT_EQ(pub.deferred(), 1u);
        EXPECT_EQ(pub.poll_spec().timeout_ns, 1'000'000) << "tries again in 1 ms";
    }
    pub.dispatch(0);
    std::lock_guard<std::mutex> g(ch.mutex);
    EXPECT_EQ(ch.version, 1u);
    ASSERT_EQ(ch.events.size(), 1u);
    EXPECT_EQ(ch.events[0].kind, BusEvent::Kind::Warning);
    EXPECT_EQ(pub.poll_spec().timeout_ns, -1);
}

// Issue 17: an idle node publishes every second; the bus thread is woken (an
// eventfd write, a context switch) only when there is something to announce.
TEST(BusPublisher, WakesTheBusThreadOnlyWhenSomethingAnnouncedChanged) {
    TempDir d;
    d.write("proc/meminfo", "MemTotal:       16777216 kB\nMemAvailable:    4194304 kB\n");
    d.write("oomguard.toml", "[poll]\npsi = false\n[paths]\nproc = \"" + d.path() + "/proc\"\n");
    DaemonOptions o;
    o.config_path = d.path() + "/oomguard.toml";
    o.log_target = LogTarget::Stderr;
    o.mlock = false;
    o.allow_insecure_config = true;
    Daemon daemon(o);
    ASSERT_TRUE(daemon.init());
    BusChannel ch;
    BusPublisher pub(daemon, ch);
    // Wakes pending on the eventfd since the last call (its counter, then 0).
    auto wakes = [&] {
        uint64_t v = 0;
        return ::read(ch.to_bus.fd(), &v, sizeof v) == sizeof v ? v : 0;
    };
    pub.on_config(daemon.state(), daemon.config());
    EXPECT_EQ(wakes(), 1u) << "the first publication wakes the bus thread";
    for (int i = 0; i < 5; ++i) pub.on_state(daemon.state());
    EXPECT_EQ(wakes(), 0u) << "nothing changed: the bus thread sleeps on";
    {
        std::lock_guard<std::mutex> g(ch.mutex);
        EXPECT_EQ(ch.version, 6u) << "the snapshot is still kept current";
    }
    pub.on_warning(daemon.state());
    EXPECT_EQ(wakes(), 1u) << "a signal to emit wakes it";
    pub.on_state(daemon.state());
    EXPECT_EQ(wakes(), 0u);
}
