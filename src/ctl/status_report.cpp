#include "ctl/status_report.hpp"

#include <time.h>

#include <algorithm>
#include <chrono>

#include "ctl/json_writer.hpp"
#include "util/units.hpp"

namespace oomguard::ctl {

std::string format_time(uint64_t usec) {
    if (usec == 0) return "never";
    time_t secs = static_cast<time_t>(usec / 1000000u);
    tm t{};
    localtime_r(&secs, &t);
    char buf[64];
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %Z", &t);
    return buf;
}

std::string format_ago(uint64_t then_usec, uint64_t now_usec) {
    if (now_usec <= then_usec) return "just now";
    auto d = std::chrono::microseconds(now_usec - then_usec);
    return format_duration(std::chrono::duration_cast<std::chrono::seconds>(d)) + " ago";
}

namespace {

std::string or_dash(const std::string& s) { return s.empty() ? "-" : s; }

std::string pod_name(const std::string& ns, const std::string& pod) {
    if (ns.empty() && pod.empty()) return "-";
    return or_dash(ns) + "/" + or_dash(pod);
}

void kv(std::string& o, const char* key, const std::string& value) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%14s: ", key);
    o += buf;
    o += value;
    o += '\n';
}

void row_json(JsonWriter& j, const HeaviestRow& r) {
    j.begin_object()
        .field("cgroup", r.cgroup)
        .field("namespace", r.namespace_)
        .field("pod", r.pod)
        .field("container", r.container)
        .field("qos", r.qos)
        .field("working_set_bytes", r.working_set)
        .field("limit_bytes", r.limit)
        .end_object();
}

void table(std::string& o, const std::vector<HeaviestRow>& rows, const char* indent) {
    const std::vector<std::string> head = {"NAMESPACE",   "POD",   "CONTAINER", "QOS",
                                           "WORKING SET", "LIMIT", "CGROUP"};
    std::vector<std::vector<std::string>> cells;
    for (const HeaviestRow& r : rows)
        cells.push_back({or_dash(r.namespace_), or_dash(r.pod), or_dash(r.container),
                         or_dash(r.qos), format_bytes(r.working_set),
                         r.limit ? format_bytes(r.limit) : "none", r.cgroup});
    std::vector<size_t> w(head.size());
    for (size_t i = 0; i < head.size(); ++i) {
        w[i] = head[i].size();
        for (const auto& c : cells) w[i] = std::max(w[i], c[i].size());
    }
    auto line = [&](const std::vector<std::string>& c) {
        o += indent;
        for (size_t i = 0; i < c.size(); ++i) {
            // Sizes right-aligned, text left-aligned; the last column is not padded.
            const bool right = i == 4 || i == 5;
            std::string pad(w[i] - c[i].size(), ' ');
            if (i + 1 == c.size())
                o += c[i];
            else
                o += (right ? pad + c[i] : c[i] + pad) + "  ";
        }
        o += '\n';
    };
    line(head);
    for (const auto& c : cells) line(c);
}

}  // namespace

std::string render_status_text(const StatusReport& s, uint64_t now_usec) {
    std::string o =
        "● oomguard " + s.version + ": " + s.state + (s.dry_run ? " (dry-run)" : "") + "\n";
    std::string mem = format_bytes(s.mem_available) + " of " + format_bytes(s.mem_total);
    if (s.mem_total) {
        char pct[32];
        std::snprintf(
            pct, sizeof pct, " (%.0f%%)",
            100.0 * static_cast<double>(s.mem_available) / static_cast<double>(s.mem_total));
        mem += pct;
    }
    kv(o, "State", s.state);
    kv(o, "MemAvailable", mem);
    std::string thr = format_bytes(s.threshold);
    if (s.mem_available >= s.threshold)
        thr += " (" + format_bytes(s.mem_available - s.threshold) + " above it)";
    else
        thr += " (" + format_bytes(s.threshold - s.mem_available) + " BELOW it)";
    kv(o, "Threshold", thr);
    kv(o, "Warning at", s.warn_threshold ? format_bytes(s.warn_threshold) : "none");
    kv(o, "Action", s.mode + (s.dry_run ? " (dry-run: logs only)" : ""));
    kv(o, "Triggers",
       std::to_string(s.trigger_count) +
           (s.trigger_failures ? " (" + std::to_string(s.trigger_failures) + " failed)" : ""));
    std::string last = format_time(s.last_trigger_usec);
    if (s.last_trigger_usec) last += "; " + format_ago(s.last_trigger_usec, now_usec);
    if (!s.target_cgroup.empty())
        last += "; heaviest then: " + pod_name(s.target_namespace, s.target_pod) + " (" +
                s.target_cgroup + ")";
    kv(o, "Last trigger", last);
    if (const OomKill& v = s.victim; v.realtime_usec) {
        kv(o, "Last victim",
           "pid " + std::to_string(v.pid) + " (" + v.task + ") in " +
               pod_name(v.cgroup.pod_namespace, v.cgroup.pod()) +
               (v.cgroup.path.empty() ? "" : " (" + v.cgroup.path + ")") + "; " +
               format_ago(v.realtime_usec, now_usec));
    } else {
        kv(o, "Last victim", "none");
    }
    if (const PredictedTask& p = s.predicted; p.pid > 0 && s.predicted_usec) {
        std::string where =
            p.cgroup.pod().empty()
                ? (p.cgroup.path.empty() ? "" : " in " + p.cgroup.path)
                : " in " + pod_name(p.cgroup.pod_namespace, p.cgroup.pod()) +
                      (p.cgroup.container().empty() ? "" : ", container " + p.cgroup.container());
        kv(o, "Would kill now",
           "pid " + std::to_string(p.pid) + " (" + p.comm + ")" + where + ", oom_score " +
               std::to_string(p.oom_score) + "; scanned " + format_ago(s.predicted_usec, now_usec));
    } else {
        kv(o, "Would kill now",
           s.warn_threshold ? "not scanned (oomguard scans only below the warning level)"
                            : "not scanned (oomguard scans only below the recovery level; there "
                              "is no warning level)");
    }
    if (s.audit.empty()) {
        kv(o, "Node audit", "no findings");
    } else {
        std::string a;
        for (const auto& [check, n] : s.audit)
            a += (a.empty() ? "" : ", ") + check + (n > 1 ? " (" + std::to_string(n) + ")" : "");
        kv(o, "Node audit",
           a + "; details and fixes: journalctl -u oomguard "
               "MESSAGE_ID=efa13e236c2b4aae95f0abaf3e7ff5ec");
    }
    kv(o, "OOM kills", std::to_string(s.kernel_oom_kills) + " by the kernel");
    if (!s.last_error.empty()) kv(o, "Last error", s.last_error);
    kv(o, "Config", s.config_path);
    o += "\nHeaviest pods and containers:\n";
    if (s.top.empty())
        o += "  none known (no cgroup data)\n";
    else
        table(o, s.top, "  ");
    return o;
}

std::string render_status_json(const StatusReport& s) {
    JsonWriter j;
    j.begin_object()
        .field("version", s.version)
        .field("state", s.state)
        .field("mem_available_bytes", s.mem_available)
        .field("mem_total_bytes", s.mem_total)
        .field("threshold_bytes", s.threshold)
        .field("warn_threshold_bytes", s.warn_threshold)
        .field("mode", s.mode)
        .field("dry_run", s.dry_run)
        .field("trigger_count", s.trigger_count)
        .field("trigger_failures", s.trigger_failures)
        .field("last_trigger_usec", s.last_trigger_usec)
        .field("kernel_oom_kills", s.kernel_oom_kills)
        .field("config_path", s.config_path)
        .field("last_error", s.last_error);
    j.key("last_trigger_target");
    if (s.target_cgroup.empty()) {
        j.null();
    } else {
        j.begin_object()
            .field("cgroup", s.target_cgroup)
            .field("namespace", s.target_namespace)
            .field("pod", s.target_pod)
            .end_object();
    }
    j.key("last_victim");
    if (!s.victim.realtime_usec) {
        j.null();
    } else {
        j.begin_object()
            .field("time_usec", s.victim.realtime_usec)
            .field("pid", static_cast<uint64_t>(s.victim.pid))
            .field("name", s.victim.task)
            .field("cgroup", s.victim.cgroup.path)
            .field("namespace", s.victim.cgroup.pod_namespace)
            .field("pod", s.victim.cgroup.pod())
            .end_object();
    }
    j.key("predicted_victim");
    if (s.predicted.pid <= 0 || !s.predicted_usec) {
        j.null();
    } else {
        j.begin_object()
            .field("time_usec", s.predicted_usec)
            .field("pid", static_cast<uint64_t>(s.predicted.pid))
            .field("name", s.predicted.comm)
            .field("oom_score", static_cast<uint64_t>(s.predicted.oom_score))
            .field("cgroup", s.predicted.cgroup.path)
            .field("namespace", s.predicted.cgroup.pod_namespace)
            .field("pod", s.predicted.cgroup.pod())
            .field("container", s.predicted.cgroup.container_name)
            .end_object();
    }
    j.key("audit_findings").begin_object();
    for (const auto& [check, n] : s.audit) j.field(check, static_cast<uint64_t>(n));
    j.end_object();
    j.key("heaviest").begin_array();
    for (const HeaviestRow& r : s.top) row_json(j, r);
    j.end_array().end_object();
    return j.str() + "\n";
}

std::string render_top_text(const std::vector<HeaviestRow>& rows) {
    if (rows.empty()) return "No pods or containers known (no cgroup data).\n";
    std::string o;
    table(o, rows, "");
    return o;
}

std::string render_top_json(const std::vector<HeaviestRow>& rows) {
    JsonWriter j;
    j.begin_array();
    for (const HeaviestRow& r : rows) row_json(j, r);
    j.end_array();
    return j.str() + "\n";
}

}  // namespace oomguard::ctl
