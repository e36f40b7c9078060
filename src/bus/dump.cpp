#include "bus/dump.hpp"

#include <time.h>

#include <cstdio>

#include "oomguard_build_config.h"
#include "util/units.hpp"

namespace oomguard {

std::string format_realtime_usec(uint64_t usec) {
    if (usec == 0) return "never";
    time_t secs = static_cast<time_t>(usec / 1000000u);
    tm t{};
    localtime_r(&secs, &t);
    char buf[64];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &t);
    std::snprintf(buf + n, sizeof buf - n, ".%03u", static_cast<unsigned>(usec / 1000u % 1000u));
    n += 4;
    strftime(buf + n, sizeof buf - n, " %Z", &t);
    return buf;
}

namespace {

std::string bytes_and_exact(uint64_t b) {
    return format_bytes(b) + " (" + std::to_string(b) + " B)";
}

std::string or_dash(const std::string& s) { return s.empty() ? "-" : s; }

}  // namespace

std::string render_dump(const DumpInput& in) {
    const DaemonState& s = in.state;
    std::string o;
    auto line = [&o](const char* key, const std::string& value) {
        char pad[32];
        std::snprintf(pad, sizeof pad, "%-22s", key);
        o += pad;
        o += value;
        o += '\n';
    };
    o += std::string("oomguard ") + OOMGUARD_VERSION + "\n";
    line("State:", to_string(s.state));
    line("MemAvailable:", bytes_and_exact(s.sample.mem_available));
    line("MemTotal:", bytes_and_exact(s.sample.mem_total));
    line("Threshold:", bytes_and_exact(s.levels.min));
    line("Warning level:", s.levels.warn ? bytes_and_exact(s.levels.warn) : "none");
    line("Recovery level:", bytes_and_exact(s.levels.recover));
    line("Mode:", std::string(to_string(s.mode)) +
                      (s.dry_run ? " (dry-run: never writes the trigger)" : ""));
    line("Trigger path:", in.config.action.sysrq_trigger);
    line("Triggers:", std::to_string(s.triggers_total));
    line("Trigger failures:", std::to_string(s.trigger_failures_total));
    line("Warnings:", std::to_string(s.warnings_total));
    line("Episodes:", std::to_string(s.episodes_total));
    line("Last trigger:", format_realtime_usec(s.last_trigger_realtime_usec));
    if (in.last_trigger_target && !in.last_trigger_target->cgroup.empty()) {
        const HeaviestRow& t = *in.last_trigger_target;
        line("Last trigger target:",
             or_dash(t.namespace_) + "/" + or_dash(t.pod) + " (" + t.cgroup + ")");
    }
    line("Kernel OOM kills:", std::to_string(s.oom_kills_total));
    line("OOM requests ignored:",
         std::to_string(s.oom_requests_ignored_total) +
             (s.oom_requests_ignored_total ? " (sysrq 'f' found no eligible task: nothing killed)"
                                           : ""));
    line("Cgroup kills:", std::to_string(s.cgroup_kills_total));
    if (const OomKill& v = s.last_oom_kill; v.pid >= 0) {
        line("Last victim:", "pid " + std::to_string(v.pid) + " (" + v.task + ") in " +
                                 or_dash(v.cgroup.pod_namespace) + "/" + or_dash(v.cgroup.pod()) +
                                 ", cgroup " + or_dash(v.cgroup.path) + ", at " +
                                 format_realtime_usec(v.realtime_usec));
    } else {
        line("Last victim:", "none");
    }
    line("Samples:", std::to_string(s.samples_total) + " (" +
                         std::to_string(s.sample_errors_total) + " failed)");
    line("Last error:", s.last_error.empty() ? "none" : s.last_error);
    line("Config:", s.config_path);
    if (!in.bus.empty()) line("D-Bus:", in.bus);

    o += "\nHeaviest pods and containers (working set):\n";
    if (!in.heaviest_available) {
        o += "  (no cgroup data source)\n";
    } else if (in.heaviest.empty()) {
        o += "  (none found)\n";
    } else {
        for (const HeaviestRow& r : in.heaviest) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "  %12s  ", format_bytes(r.working_set).c_str());
            o += buf;
            o += or_dash(r.namespace_) + "/" + or_dash(r.pod);
            if (!r.container.empty()) o += "/" + r.container;
            o += "  qos=" + or_dash(r.qos) +
                 "  limit=" + (r.limit ? format_bytes(r.limit) : "none") + "  " + r.cgroup + "\n";
        }
    }
    o += "\nEffective config:\n";
    o += render_config(in.config);
    return o;
}

}  // namespace oomguard
