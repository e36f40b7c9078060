#include <gtest/gtest.h>

#include "config/config.hpp"

using namespace oomguard;
using namespace std::chrono_literals;

namespace {

ConfigLoad parse(const std::string& text) { return parse_config(text, "test.toml"); }

// The one error expected, as "test.toml:LINE: KEY: message".
std::string only_error(const std::string& text) {
    ConfigLoad l = parse(text);
    EXPECT_FALSE(l.config.has_value());
    EXPECT_EQ(l.errors.size(), 1u);
    std::string all;
    for (auto& e : l.errors) all += e.to_string("test.toml") + "\n";
    return all;
}

}  // namespace

TEST(Config, EmptyFileGivesDefaults) {
    ConfigLoad l = parse("");
    ASSERT_TRUE(l.config);
    const Config& c = *l.config;
    EXPECT_EQ(c.memory.min_available.bytes, 350ull << 20);
    EXPECT_FALSE(c.memory.warn_available);
    EXPECT_EQ(c.action.mode, ActionMode::Sysrq);
    EXPECT_EQ(c.action.sysrq_trigger, "/proc/sysrq-trigger");
    EXPECT_EQ(c.action.repeat_after, 1s);
    EXPECT_EQ(c.paths.proc, "/proc");
    EXPECT_EQ(c.kubernetes.exclude_namespaces, std::vector<std::string>{"kube-system"});
    EXPECT_TRUE(c.metrics.textfile.empty());
}

TEST(Config, FullConfigParses) {
    ConfigLoad l = parse(R"(
[memory]
min_available = "5%"
warn_available = "10%"
recover_available = "12%"
[action]
mode = "dry-run"
sysrq_trigger = "/tmp/trigger"
repeat_after = "2s"
fallback_sysrq = false
[poll]
min_interval = "2ms"
max_interval = "500ms"
fill_rate = "2GiB/s"
psi = false
[paths]
proc = "/host/proc"
cgroup = "/host/sys/fs/cgroup"
kmsg = "/host/dev/kmsg"
[kubernetes]
log_heaviest = false
pod_logs_dir = "/host/var/log/pods"
exclude_namespaces = ["kube-system", "monitoring"]
kill_guaranteed = true
[metrics]
textfile = "/var/lib/node-exporter/oomguard.prom"
interval = "30s"
)");
    ASSERT_TRUE(l.config) << l.errors[0].to_string("t");
    const Config& c = *l.config;
    EXPECT_TRUE(c.memory.min_available.is_percent);
    EXPECT_DOUBLE_EQ(c.memory.warn_available->percent, 10.0);
    EXPECT_EQ(c.action.mode, ActionMode::DryRun);
    EXPECT_EQ(c.action.repeat_after, 2s);
    EXPECT_FALSE(c.action.fallback_sysrq);
    EXPECT_EQ(c.poll.min_interval, 2ms);
    EXPECT_EQ(c.poll.fill_rate, 2ull << 30);
    EXPECT_FALSE(c.poll.psi);
    EXPECT_EQ(c.paths.proc, "/host/proc");
    EXPECT_EQ(c.kubernetes.exclude_namespaces.size(), 2u);
    EXPECT_TRUE(c.kubernetes.kill_guaranteed);
    EXPECT_EQ(c.metrics.interval, 30s);
}

TEST(Config, RenderedConfigParsesBackTheSame) {
    ConfigLoad l = parse("[memory]\nmin_available = \"400MiB\"\nwarn_available = \"3%\"\n[action]\nmode = \"kill-cgroup\"\n");
    ASSERT_TRUE(l.config);
    ConfigLoad again = parse(render_config(*l.config));
    ASSERT_TRUE(again.config) << again.errors[0].to_string("rendered");
    EXPECT_EQ(again.config->memory.min_available, l.config->memory.min_available);
    EXPECT_EQ(again.config->memory.warn_available, l.config->memory.warn_available);
    EXPECT_EQ(again.config->action.mode, ActionMode::KillCgroup);
}

TEST(ConfigErrors, UnknownKeyAndSection) {
    EXPECT_NE(only_error("[memory]\nmin_avail = \"1GiB\"\n").find("test.toml:2: memory.min_avail: unknown key"),
              std::string::npos);
    EXPECT_NE(only_error("\n[memroy]\n").find("test.toml:2: memroy: unknown section"), std::string::npos);
    EXPECT_NE(only_error("threshold = \"1GiB\"\n").find("test.toml:1: threshold: unknown"), std::string::npos);
}

TEST(ConfigErrors, WrongTypes) {
    EXPECT_NE(only_error("[action]\nmode = 1\n").find("test.toml:2: action.mode: expected a string, got an integer"),
              std::string::npos);
    EXPECT_NE(only_error("[poll]\npsi = \"yes\"\n").find("test.toml:2: poll.psi: expected true or false"),
              std::string::npos);
    EXPECT_NE(only_error("[kubernetes]\nexclude_namespaces = \"kube-system\"\n").find("expected an array"),
              std::string::npos);
    EXPECT_NE(only_error("memory = 5\n").find("test.toml:1: memory: expected a table"), std::string::npos);
}

TEST(ConfigErrors, BareNumbersSayWhichUnit) {
    std::string e = only_error("[memory]\nmin_available = 350\n");
    EXPECT_NE(e.find("test.toml:2: memory.min_available: a bare number has no unit"), std::string::npos) << e;
    EXPECT_NE(e.find("350MiB"), std::string::npos) << e;
    e = only_error("[action]\n\nrepeat_after = 1\n");
    EXPECT_NE(e.find("test.toml:3: action.repeat_after"), std::string::npos) << e;
    EXPECT_NE(e.find("\"500ms\""), std::string::npos) << e;
    e = only_error("[memory]\nmin_available = \"350\"\n");
    EXPECT_NE(e.find("has no unit"), std::string::npos) << e;
}

TEST(ConfigErrors, AbsurdValues) {
    EXPECT_NE(only_error("[memory]\nmin_available = \"0MiB\"\n").find("greater than 0"), std::string::npos);
    EXPECT_NE(only_error("[memory]\nmin_available = \"100%\"\n").find("between 0% and 100%"), std::string::npos);
    EXPECT_NE(only_error("[memory]\nmin_available = \"0%\"\n").find("between 0% and 100%"), std::string::npos);
    EXPECT_NE(only_error("[memory]\nmin_available = \"-5MiB\"\n").find("negative"), std::string::npos);
    EXPECT_NE(only_error("[action]\nrepeat_after = \"1ms\"\n").find("between 10ms and 1h"), std::string::npos);
    EXPECT_NE(only_error("[poll]\nmax_interval = \"5min\"\n").find("between 1ms and 60s"), std::string::npos);
    EXPECT_NE(only_error("[poll]\nfill_rate = \"1KiB/s\"\n").find("between 1MiB/s"), std::string::npos);
    EXPECT_NE(only_error("[poll]\nmin_interval = \"2s\"\nmax_interval = \"1s\"\n").find("must not exceed"),
              std::string::npos);
    EXPECT_NE(only_error("[paths]\nproc = \"relative/proc\"\n").find("absolute path"), std::string::npos);
    EXPECT_NE(only_error("[action]\nmode = \"nuke\"\n").find("unknown mode \"nuke\""), std::string::npos);
}

TEST(ConfigErrors, WarnBelowMin) {
    std::string e = only_error("[memory]\nmin_available = \"1GiB\"\nwarn_available = \"512MiB\"\n");
    EXPECT_NE(e.find("test.toml:3: memory.warn_available"), std::string::npos) << e;
    EXPECT_NE(e.find("must be above memory.min_available"), std::string::npos) << e;
    e = only_error("[memory]\nmin_available = \"5%\"\nrecover_available = \"5%\"\n");
    EXPECT_NE(e.find("memory.recover_available"), std::string::npos) << e;
    // Mixed kinds are compared at run time against MemTotal, not rejected.
    EXPECT_TRUE(parse("[memory]\nmin_available = \"1GiB\"\nwarn_available = \"5%\"\n").config);
}

TEST(ConfigErrors, AllErrorsReportedInLineOrder) {
    ConfigLoad l = parse("[action]\nmode = \"x\"\n[memory]\nmin_available = 1\nbogus = true\n");
    ASSERT_EQ(l.errors.size(), 3u);
    EXPECT_EQ(l.errors[0].line, 2);
    EXPECT_EQ(l.errors[1].line, 4);
    EXPECT_EQ(l.errors[2].line, 5);
}

TEST(ConfigErrors, SyntaxError) {
    ConfigLoad l = parse("[memory]\nmin_available = \"1GiB\n");
    ASSERT_EQ(l.errors.size(), 1u);
    EXPECT_EQ(l.errors[0].line, 2);
    EXPECT_NE(l.errors[0].message.find("TOML syntax error"), std::string::npos);
}

TEST(ConfigErrors, MissingFile) {
    ConfigLoad l = load_config("/nonexistent/oomguard.toml");
    ASSERT_EQ(l.errors.size(), 1u);
    EXPECT_NE(l.errors[0].message.find("No such file"), std::string::npos);
}

// Issue 10 defect 2: the interval relations the poll schedule relies on, with the
// key and the line of the offending value.
TEST(ConfigErrors, IntervalRelations) {
    EXPECT_NE(
        only_error("[poll]\nmin_interval = \"2s\"\nmax_interval = \"1s\"\n")
            .find("test.toml:2: poll.min_interval: (2s) must not exceed poll.max_interval (1s)"),
        std::string::npos);
    EXPECT_NE(only_error("[poll]\nmin_interval = \"200ms\"\nidle_interval = \"100ms\"\n")
                  .find("test.toml:3: poll.idle_interval: (100ms) must not be below "
                        "poll.min_interval (200ms)"),
              std::string::npos);
    EXPECT_NE(
        only_error("[poll]\nidle_interval = \"2s\"\nmax_interval = \"1s\"\n")
            .find("test.toml:2: poll.idle_interval: (2s) must not exceed poll.max_interval (1s)"),
        std::string::npos);
    // min_interval above 100 ms is valid (it used to abort the daemon below the threshold).
    ConfigLoad ok = parse("[poll]\nmin_interval = \"200ms\"\n");
    ASSERT_TRUE(ok.config) << (ok.errors.empty() ? "" : ok.errors[0].message);
    EXPECT_EQ(ok.config->poll.min_interval, 200ms);
    // Unset idle_interval follows small bounds instead of failing them.
    ConfigLoad small = parse("[poll]\nmax_interval = \"50ms\"\n");
    ASSERT_TRUE(small.config);
    EXPECT_FALSE(small.config->poll.idle_interval);
}

TEST(Config, ShippedPollDefaults) {
    ConfigLoad l = parse("");
    ASSERT_TRUE(l.config);
    EXPECT_EQ(l.config->poll.min_interval, 1ms);
    EXPECT_EQ(l.config->poll.max_interval, 2s);
    EXPECT_EQ(l.config->poll.fill_rate, 12ull << 30);
    ConfigLoad shipped = load_config(OOMGUARD_SOURCE_DIR "/config/oomguard.toml", {true});
    ASSERT_TRUE(shipped.config);
    EXPECT_EQ(shipped.config->poll.max_interval, 2s);
    EXPECT_EQ(shipped.config->poll.fill_rate, 12ull << 30);
    EXPECT_EQ(shipped.config->poll.idle_interval.value_or(0s), 100ms);
}

// Issue 10 defect 4: absolute levels at or above MemTotal, named with key, line and MemTotal.
TEST(ConfigErrors, LevelsAtOrAboveMemTotal) {
    ConfigLoad l = parse(
        "[memory]\nmin_available = \"8GiB\"\nwarn_available = \"9GiB\"\n"
        "recover_available = \"10GiB\"\n");
    ASSERT_TRUE(l.config);
    auto errors = check_against_mem_total(*l.config, 4ull << 30);
    ASSERT_EQ(errors.size(), 3u);
    EXPECT_NE(errors[0].to_string("t.toml").find(
                  "t.toml:2: memory.min_available: (8.0 GiB) is at or above "
                  "this node's MemTotal (4.0 GiB"),
              std::string::npos)
        << errors[0].to_string("t.toml");
    EXPECT_NE(errors[1].to_string("t.toml").find("t.toml:3: memory.warn_available"),
              std::string::npos);
    // recover 4 GiB on a 6 GiB node is fine; on exactly 4 GiB it is not.
    EXPECT_EQ(check_against_mem_total(*parse("[memory]\nrecover_available = \"4GiB\"\n").config,
                                      6ull << 30)
                  .size(),
              0u);
    auto r = check_against_mem_total(*parse("[memory]\nrecover_available = \"4GiB\"\n").config,
                                     4ull << 30);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_NE(r[0].message.find("an episode would never end"), std::string::npos);
    // Percentages always fit.
    EXPECT_TRUE(
        check_against_mem_total(*parse("[memory]\nmin_available = \"90%\"\n").config, 1ull << 30)
            .empty());
    // The default (350 MiB) on a tiny node: refused too.
    EXPECT_EQ(check_against_mem_total(*parse("").config, 256ull << 20).size(), 1u);
}
