// Bus pieces that need no bus, the texts: the metrics families and textfile,
// the Dump text, oomguardctl's renderings and its JSON writer. Pure, ~10 ms.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "bus/dump.hpp"
#include "ctl/json_writer.hpp"
#include "ctl/status_report.hpp"
#include "daemon.hpp"
#include "service/metrics.hpp"
#include "support/files.hpp"

using namespace oomguard;

namespace {

using oomguard::test::MiB;
using oomguard::test::TempDir;

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
    s.memcg_oom_kills_total = 1;
    s.oom_kills_total = 2;
    s.last_trigger_realtime_usec = 1700000000123456ull;
    s.config_path = "/etc/oomguard.toml";
    return s;
}

}  // namespace

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
    // Where it scans: below the warning level, or without one the recovery level.
    EXPECT_NE(t.find(r.warn_threshold ? "below the warning level" : "below the recovery level"),
              std::string::npos)
        << t;
    {
        ctl::StatusReport w = r;
        w.warn_threshold = w.warn_threshold ? 0 : 1ull << 30;
        const std::string tw = ctl::render_status_text(w, now);
        EXPECT_NE(
            tw.find(w.warn_threshold ? "below the warning level" : "below the recovery level"),
            std::string::npos)
            << tw;
    }
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
    EXPECT_NE(
        js.find("\"predicted_victim\":{\"time_usec\":" + std::to_string(now - 3'000'000ull) +
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
