// Issue 15's metric set: the node-wide kernel counters (vmstat oom_kill, PSI
// memory totals in seconds), the node/memcg split of the OOM kills, the victims
// by namespace (bounded), the allocatable gauge and oomguard_build_info.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "core/clock.hpp"
#include "oomguard_build_config.h"
#include "sensors/node_counters.hpp"
#include "service/metrics.hpp"
#include "support/files.hpp"

using namespace oomguard;

namespace {

struct Dir {
    oomguard::test::TempDir tmp;  // tests/support's
    std::string path = tmp.path();
    void write(const std::string& rel, const std::string& text) const {
        std::filesystem::create_directories(std::filesystem::path(path + "/" + rel).parent_path());
        std::ofstream(path + "/" + rel) << text;
    }
};

bool has(const std::string& out, const std::string& needle) {
    return out.find(needle) != std::string::npos;
}

}  // namespace

TEST(Vmstat, FindsTheFieldAndRejectsGarbage) {
    EXPECT_EQ(*parse_vmstat_field("nr_free_pages 5\noom_kill 12\npgfault 9\n", "oom_kill"), 12u);
    // A longer key with the same prefix is not the field.
    EXPECT_EQ(*parse_vmstat_field("oom_kill_x 3\noom_kill 4", "oom_kill"), 4u);
    auto missing = parse_vmstat_field("nr_free_pages 5\n", "oom_kill");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().message, "no oom_kill line");
    auto bad = parse_vmstat_field("oom_kill 12x\n", "oom_kill");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().message, "malformed vmstat line \"oom_kill 12x\"");
}

TEST(NodeCounters, ReadsVmstatAndPressureFromTheProcRoot) {
    Dir d;
    d.write("vmstat", "pgfault 1\noom_kill 7\n");
    d.write("pressure/memory",
            "some avg10=1.00 avg60=0.50 avg300=0.10 total=1234567\n"
            "full avg10=0.00 avg60=0.00 avg300=0.00 total=89\n");
    NodeCounters n(d.path);
    EXPECT_EQ(*n.oom_kills(), 7u);
    auto p = n.memory_pressure();
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ(p->some_us, 1234567u);
    EXPECT_EQ(p->full_us, 89u);
    EXPECT_TRUE(p->has_full);

    // Errors name the file.
    NodeCounters none(d.path + "/nowhere");
    ASSERT_FALSE(none.oom_kills());
    EXPECT_EQ(none.oom_kills().error().message,
              d.path + "/nowhere/vmstat: No such file or directory");
    d.write("vmstat", "pgfault 1\n");
    EXPECT_EQ(n.oom_kills().error().message, d.path + "/vmstat: no oom_kill line");
    d.write("pressure/memory", "garbage\n");
    EXPECT_EQ(n.memory_pressure().error().message, d.path + "/pressure/memory: no PSI 'some' line");
}

TEST(MetricsRender, BuildInfoAndNodeOomKillsApartFromMemcg) {
    DaemonState s;
    s.oom_kills_total = 5;         // every kill on kmsg
    s.memcg_oom_kills_total = 3;  // of which memcg
    std::string out;
    MetricsWriter::render(s, {}, 0, out);
    EXPECT_TRUE(has(out, "# TYPE oomguard_build_info gauge\noomguard_build_info{version=\"" +
                             std::string(OOMGUARD_VERSION) + "\"} 1\n"))
        << out;
    EXPECT_TRUE(has(out,
                    "# TYPE oomguard_node_oom_kills_total counter\n"
                    "oomguard_node_oom_kills_total 2\n"))
        << out;
    EXPECT_TRUE(has(out, "oomguard_memcg_oom_kills_total 3\n")) << out;
    // The old all-kills name is gone (renamed, not silently redefined).
    EXPECT_FALSE(has(out, "oomguard_kernel_oom_kills_total")) << out;
    // Without readings, their families are absent, not zero.
    EXPECT_FALSE(has(out, "oomguard_vmstat_oom_kills_total")) << out;
    EXPECT_FALSE(has(out, "oomguard_pressure_memory")) << out;
    EXPECT_FALSE(has(out, "oomguard_node_allocatable_enforced")) << out;
    EXPECT_FALSE(has(out, "oomguard_oom_victims_total")) << out;
}

TEST(MetricsRender, PressureInSecondsVmstatAllocatableAndVictims) {
    DaemonState s;
    MetricsExtras x;
    x.vmstat_oom_kills = 42;
    x.memory_pressure = PressureTotals{12000345, 7, true};
    x.allocatable_enforced = false;
    x.victims[{"shop", "node"}] = 2;
    x.victims[{"", "memcg"}] = 1;
    x.victims[{"we\"ird", "memcg"}] = 3;
    std::string out;
    MetricsWriter::render(s, {}, 0, out, x);
    EXPECT_TRUE(has(out,
                    "# TYPE oomguard_vmstat_oom_kills_total counter\n"
                    "oomguard_vmstat_oom_kills_total 42\n"))
        << out;
    EXPECT_TRUE(has(out,
                    "# TYPE oomguard_pressure_memory_waiting_seconds_total counter\n"
                    "oomguard_pressure_memory_waiting_seconds_total 12.000345\n"))
        << out;
    EXPECT_TRUE(has(out, "oomguard_pressure_memory_stalled_seconds_total 0.000007\n")) << out;
    EXPECT_TRUE(has(out, "oomguard_node_allocatable_enforced 0\n")) << out;
    EXPECT_TRUE(has(out, "# TYPE oomguard_oom_victims_total counter\n")) << out;
    EXPECT_TRUE(has(out, "oomguard_oom_victims_total{namespace=\"shop\",scope=\"node\"} 2\n"))
        << out;
    EXPECT_TRUE(has(out, "oomguard_oom_victims_total{namespace=\"\",scope=\"memcg\"} 1\n")) << out;
    EXPECT_TRUE(has(out, "oomguard_oom_victims_total{namespace=\"we\\\"ird\",scope=\"memcg\"} 3\n"))
        << out;

    // No full line (older kernels): the stalled family is left out.
    x.memory_pressure->has_full = false;
    MetricsWriter::render(s, {}, 0, out, x);
    EXPECT_TRUE(has(out, "oomguard_pressure_memory_waiting_seconds_total 12.000345\n"));
    EXPECT_FALSE(has(out, "oomguard_pressure_memory_stalled_seconds_total")) << out;
}

TEST(MetricsWriter, ReadsTheNodeCountersAndCountsVictimsBounded) {
    Dir d;
    d.write("vmstat", "oom_kill 3\n");
    d.write("pressure/memory", "some avg10=0.00 avg60=0.00 avg300=0.00 total=2500000\n");
    ::mkdir((d.path + "/out").c_str(), 0755);
    Journal j(LogTarget::Stderr);
    Config c;
    c.paths.proc = d.path;
    c.metrics.textfile = d.path + "/out/oomguard.prom";
    MetricsWriter w(j, c.metrics);
    bool enforced = true;
    w.set_allocatable_probe([&]() -> std::optional<bool> { return enforced; });
    DaemonState s;
    w.on_config(s, c);  // the proc root comes with the effective config
    auto text = [&] {
        std::ifstream f(c.metrics.textfile);
        return std::string(std::istreambuf_iterator<char>(f), {});
    };
    EXPECT_TRUE(has(text(), "oomguard_vmstat_oom_kills_total 3\n")) << text();
    EXPECT_TRUE(has(text(), "oomguard_pressure_memory_waiting_seconds_total 2.500000\n"));
    EXPECT_TRUE(has(text(), "oomguard_node_allocatable_enforced 1\n"));

    OomKill k;
    k.cgroup.pod_namespace = "shop";
    w.count_victim(k);
    k.memcg = true;
    w.count_victim(k);
    w.count_victim(k);
    for (size_t i = 0; i < MetricsWriter::kMaxVictimNamespaces + 5; ++i) {
        k.cgroup.pod_namespace = "ns" + std::to_string(i);
        w.count_victim(k);
    }
    d.write("vmstat", "oom_kill 4\n");
    enforced = false;
    w.on_trigger(s, TriggerReport{});  // writes now
    const std::string t = text();
    EXPECT_TRUE(has(t, "oomguard_vmstat_oom_kills_total 4\n")) << t;
    EXPECT_TRUE(has(t, "oomguard_node_allocatable_enforced 0\n")) << t;
    EXPECT_TRUE(has(t, "{namespace=\"shop\",scope=\"node\"} 1\n")) << t;
    EXPECT_TRUE(has(t, "{namespace=\"shop\",scope=\"memcg\"} 2\n")) << t;
    // shop + 63 more namespaces, then the rest in _other.
    EXPECT_TRUE(has(t, "{namespace=\"ns62\",scope=\"memcg\"} 1\n")) << t;
    EXPECT_FALSE(has(t, "{namespace=\"ns63\"")) << t;
    EXPECT_TRUE(has(t, "{namespace=\"_other\",scope=\"memcg\"} 6\n")) << t;

    // A proc root without the files: the families go, the file is still written.
    std::filesystem::remove(d.path + "/vmstat");
    w.on_trigger(s, TriggerReport{});
    EXPECT_FALSE(has(text(), "oomguard_vmstat_oom_kills_total")) << text();
    EXPECT_TRUE(has(text(), "oomguard_triggers_total")) << text();
}

// The [metrics] interval on an injected clock: written at start, not again before
// `interval`, again at it; a trigger writes at once and restarts the interval.
TEST(MetricsWriter, WritesOncePerIntervalOnItsClock) {
    Dir d;
    ::mkdir((d.path + "/out").c_str(), 0755);
    Journal j(LogTarget::Stderr);
    Config c;
    c.paths.proc = d.path;
    c.metrics.textfile = d.path + "/out/oomguard.prom";
    c.metrics.interval = std::chrono::seconds(15);
    ManualClock clock(std::chrono::hours(24 * 3650));  // no real uptime: the clock is this one
    MetricsWriter w(j, c.metrics, clock);
    auto text = [&] {
        std::ifstream f(c.metrics.textfile);
        return std::string(std::istreambuf_iterator<char>(f), {});
    };
    DaemonState s;
    s.sample.mem_available = 1;
    w.on_config(s, c);
    EXPECT_EQ(w.writes(), 1u) << "written at start";
    EXPECT_TRUE(has(text(), "oomguard_mem_available_bytes 1\n")) << text();

    s.sample.mem_available = 2;
    w.on_state(s);
    clock.advance(c.metrics.interval - std::chrono::nanoseconds(1));
    w.on_state(s);
    EXPECT_EQ(w.writes(), 1u) << "not again before the interval";
    EXPECT_TRUE(has(text(), "oomguard_mem_available_bytes 1\n")) << text();

    clock.advance(std::chrono::nanoseconds(1));
    w.on_state(s);
    EXPECT_EQ(w.writes(), 2u) << "again once the interval has passed";
    EXPECT_TRUE(has(text(), "oomguard_mem_available_bytes 2\n")) << text();
    w.on_state(s);
    EXPECT_EQ(w.writes(), 2u);

    // A trigger writes at once and the next periodic write is an interval after it.
    clock.advance(std::chrono::seconds(5));
    s.sample.mem_available = 3;
    w.on_trigger(s, TriggerReport{});
    EXPECT_EQ(w.writes(), 3u) << "a trigger writes at once";
    EXPECT_TRUE(has(text(), "oomguard_mem_available_bytes 3\n")) << text();
    clock.advance(std::chrono::seconds(14));
    w.on_state(s);
    EXPECT_EQ(w.writes(), 3u) << "the interval runs from the trigger's write";
    clock.advance(std::chrono::seconds(1));
    w.on_state(s);
    EXPECT_EQ(w.writes(), 4u);
}
