#include "service/metrics.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "core/clock.hpp"
#include "oomguard_build_config.h"

namespace oomguard {

MetricsWriter::MetricsWriter(Journal& journal, const Config::Metrics& settings, const Clock& clock)
    : journal_(journal), clock_(clock) {
    apply(settings);
}

void MetricsWriter::apply(const Config::Metrics& m) {
    settings_ = m;
    tmp_path_.clear();
    if (m.textfile.empty()) return;
    // Same directory (rename must not cross filesystems), hidden, and not *.prom,
    // so the collector never reads it.
    const size_t slash = m.textfile.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : m.textfile.substr(0, slash);
    const std::string base = slash == std::string::npos ? m.textfile : m.textfile.substr(slash + 1);
    tmp_path_ = dir + "/." + base + ".tmp";
}

void MetricsWriter::append_label_value(std::string& out, std::string_view value) {
    for (char c : value) {
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '"':
                out += "\\\"";
                break;
            case '\n':
                out += "\\n";
                break;
            default:
                out += c;
        }
    }
}

namespace {

void family(std::string& out, const char* name, const char* type, const char* help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

void sample(std::string& out, const char* name, uint64_t value) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s %llu\n", name, static_cast<unsigned long long>(value));
    out += buf;
}

void gauge(std::string& out, const char* name, const char* help, uint64_t value) {
    family(out, name, "gauge", help);
    sample(out, name, value);
}

void counter(std::string& out, const char* name, const char* help, uint64_t value) {
    family(out, name, "counter", help);
    sample(out, name, value);
}

// Microseconds as seconds, exactly (no floating point): "12.000345".
void seconds_sample(std::string& out, const char* name, uint64_t usec) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s %llu.%06llu\n", name,
                  static_cast<unsigned long long>(usec / 1000000u),
                  static_cast<unsigned long long>(usec % 1000000u));
    out += buf;
}

struct PodKey {
    std::string namespace_, pod;
    bool operator<(const PodKey& o) const {
        return namespace_ != o.namespace_ ? namespace_ < o.namespace_ : pod < o.pod;
    }
};

}  // namespace

void MetricsWriter::render(const DaemonState& s, const std::vector<HeaviestRow>& rows,
                           uint64_t write_failures, std::string& out, const MetricsExtras& extras) {
    out.clear();
    family(out, "oomguard_build_info", "gauge", "Always 1; the version of the running oomguard.");
    out += "oomguard_build_info{version=\"";
    append_label_value(out, OOMGUARD_VERSION);
    out += "\"} 1\n";
    gauge(out, "oomguard_mem_available_bytes", "MemAvailable at the last sample.",
          s.sample.mem_available);
    gauge(out, "oomguard_mem_total_bytes", "MemTotal at the last sample.", s.sample.mem_total);
    gauge(out, "oomguard_threshold_bytes", "oomguard acts when MemAvailable falls below this.",
          s.levels.min);
    gauge(out, "oomguard_warn_threshold_bytes", "The warning level; 0 when none is configured.",
          s.levels.warn);
    family(out, "oomguard_state", "gauge",
           "1 for the current memory state (ok, warning, critical).");
    for (MemState st : {MemState::Ok, MemState::Warning, MemState::Critical}) {
        out += "oomguard_state{state=\"";
        out += to_string(st);
        out += st == s.state ? "\"} 1\n" : "\"} 0\n";
    }
    gauge(out, "oomguard_dry_run", "1 when oomguard only logs what it would do.",
          s.dry_run ? 1 : 0);
    counter(out, "oomguard_triggers_total",
            "Successful triggers (sysrq f, kill-cgroup or dry-run).", s.triggers_total);
    counter(out, "oomguard_trigger_failures_total", "Trigger writes that failed.",
            s.trigger_failures_total);
    counter(out, "oomguard_warnings_total", "Episodes that crossed the warning level.",
            s.warnings_total);
    // kmsg's kills split by who ran out: the node (what operators alert on;
    // sysrq 'f' included) or a cgroup at its own limit (a pod's limit, normal).
    // Their sum is D-Bus KernelOomKills.
    counter(out, "oomguard_node_oom_kills_total",
            "OOM kills the kernel reported because the node ran out of memory (not a cgroup "
            "limit; sysrq 'f' kills included).",
            s.oom_kills_total - std::min(s.memcg_oom_kills_total, s.oom_kills_total));
    counter(out, "oomguard_memcg_oom_kills_total",
            "OOM kills the kernel reported because a cgroup hit its own memory limit (a pod or "
            "container limit).",
            s.memcg_oom_kills_total);
    // The sysrq write succeeded (a trigger), but the kernel found no task to kill.
    counter(out, "oomguard_oom_requests_ignored_total",
            "sysrq 'f' requests the kernel ignored (\"OOM request ignored\": no eligible task, "
            "nothing was killed); they also count in oomguard_triggers_total.",
            s.oom_requests_ignored_total);
    counter(out, "oomguard_cgroup_kills_total",
            "kill-cgroup actions that killed a container cgroup.", s.cgroup_kills_total);
    family(out, "oomguard_last_trigger_timestamp_seconds", "gauge",
           "Unix time of the last successful trigger; 0 when none.");
    seconds_sample(out, "oomguard_last_trigger_timestamp_seconds", s.last_trigger_realtime_usec);
    counter(out, "oomguard_metrics_write_failures_total", "Failed writes of this file.",
            write_failures);

    if (!extras.victims.empty()) {
        family(out, "oomguard_oom_victims_total", "counter",
               "OOM kills the kernel reported, by the victim's namespace (\"\" outside "
               "Kubernetes) and scope (node or memcg).");
        for (const auto& [key, n] : extras.victims) {
            out += "oomguard_oom_victims_total{namespace=\"";
            append_label_value(out, key.first);
            out += "\",scope=\"";
            append_label_value(out, key.second);
            char buf[32];
            std::snprintf(buf, sizeof buf, "\"} %llu\n", static_cast<unsigned long long>(n));
            out += buf;
        }
    }
    if (extras.vmstat_oom_kills)
        counter(out, "oomguard_vmstat_oom_kills_total",
                "oom_kill of /proc/vmstat: every OOM kill on this node since boot, as the kernel "
                "counts them.",
                *extras.vmstat_oom_kills);
    if (extras.memory_pressure) {
        // The same figures as node_exporter's node_pressure_memory_*_seconds_total.
        family(out, "oomguard_pressure_memory_waiting_seconds_total", "counter",
               "Time some tasks were stalled on memory (PSI memory some, total=).");
        seconds_sample(out, "oomguard_pressure_memory_waiting_seconds_total",
                       extras.memory_pressure->some_us);
        if (extras.memory_pressure->has_full) {
            family(out, "oomguard_pressure_memory_stalled_seconds_total", "counter",
                   "Time all non-idle tasks were stalled on memory at once (PSI memory full, "
                   "total=).");
            seconds_sample(out, "oomguard_pressure_memory_stalled_seconds_total",
                           extras.memory_pressure->full_us);
        }
    }
    if (extras.allocatable_enforced)
        gauge(out, "oomguard_node_allocatable_enforced",
              "1 when the kubepods cgroup has a memory limit (kubelet enforces node allocatable), "
              "0 when it has none.",
              *extras.allocatable_enforced ? 1 : 0);

    // Who the kernel would kill now, and how often the prediction was right (issue 14).
    counter(out, "oomguard_predictions_matched_total",
            "Trigger victims that were the task predicted at the trigger.",
            s.predictions_matched_total);
    counter(out, "oomguard_predictions_missed_total",
            "Trigger victims that were not the task predicted at the trigger.",
            s.predictions_missed_total);
    if (s.prediction.pid > 0) {
        family(out, "oomguard_predicted_victim_oom_score", "gauge",
               "The kernel's oom_score of the task its OOM killer would kill now (scanned below "
               "the warning level), with its pod and container.");
        out += "oomguard_predicted_victim_oom_score{comm=\"";
        append_label_value(out, s.prediction.comm);
        out += "\",namespace=\"";
        append_label_value(out, s.prediction.cgroup.pod_namespace);
        out += "\",pod=\"";
        append_label_value(out, s.prediction.cgroup.pod());
        out += "\",container=\"";
        append_label_value(out, s.prediction.cgroup.container_name);
        char buf[32];
        std::snprintf(buf, sizeof buf, "\"} %lld\n",
                      static_cast<long long>(s.prediction.oom_score));
        out += buf;
    }
    if (s.audit.any()) {
        family(out, "oomguard_audit_findings", "gauge",
               "Active findings of the node audit, by check (see the journal's audit entries).");
        for (size_t i = 0; i < kAuditChecks.size(); ++i) {
            if (!s.audit.findings[i]) continue;
            out += "oomguard_audit_findings{check=\"";
            out += kAuditChecks[i];
            char buf[32];
            std::snprintf(buf, sizeof buf, "\"} %u\n", s.audit.findings[i]);
            out += buf;
        }
    }

    // Pods: a pod-level row wins over the sum of its containers.
    std::map<PodKey, std::pair<uint64_t, bool>> pods;  // value: bytes, from a pod-level row
    for (const HeaviestRow& r : rows) {
        if (r.pod.empty()) continue;
        auto& [bytes, pod_level] = pods[PodKey{r.namespace_, r.pod}];
        if (r.container.empty()) {
            bytes = r.working_set;
            pod_level = true;
        } else if (!pod_level) {
            bytes += r.working_set;
        }
    }
    if (pods.empty()) return;
    std::vector<std::pair<PodKey, uint64_t>> ranked;
    for (auto& [k, v] : pods) ranked.emplace_back(k, v.first);
    std::stable_sort(ranked.begin(), ranked.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    if (ranked.size() > kMaxPods) ranked.resize(kMaxPods);
    family(out, "oomguard_heaviest_pod_working_set_bytes", "gauge",
           "Working set (usage - inactive_file) of the heaviest pods.");
    for (const auto& [k, bytes] : ranked) {
        out += "oomguard_heaviest_pod_working_set_bytes{namespace=\"";
        append_label_value(out, k.namespace_);
        out += "\",pod=\"";
        append_label_value(out, k.pod);
        char buf[32];
        std::snprintf(buf, sizeof buf, "\"} %llu\n", static_cast<unsigned long long>(bytes));
        out += buf;
    }
}

void MetricsWriter::count_victim(const OomKill& kill) {
    std::string ns = kill.cgroup.pod_namespace;
    if (!victim_namespaces_.count(ns)) {
        if (victim_namespaces_.size() >= kMaxVictimNamespaces)
            ns = kOtherNamespace;
        else
            victim_namespaces_.insert(ns);
    }
    ++extras_.victims[{std::move(ns), kill.memcg ? "memcg" : "node"}];
}

void MetricsWriter::read_node() {
    // Off the hot path: at most once per write. A file that cannot be read
    // (no PSI, an old kernel) leaves its family out rather than failing the write.
    if (!node_.proc_root().empty()) {
        auto kills = node_.oom_kills();
        extras_.vmstat_oom_kills =
            kills ? std::optional<uint64_t>(*kills) : std::optional<uint64_t>();
        auto psi = node_.memory_pressure();
        extras_.memory_pressure =
            psi ? std::optional<PressureTotals>(*psi) : std::optional<PressureTotals>();
    }
    extras_.allocatable_enforced = allocatable_ ? allocatable_() : std::nullopt;
}

Status MetricsWriter::write(const DaemonState& s) {
    if (!enabled()) return ok_status();
    std::vector<HeaviestRow> rows;
    if (heaviest_) rows = heaviest_->heaviest(kMaxPods * 4);
    read_node();
    render(s, rows, failures_, buf_, extras_);

    // Whatever sits at the temp path (a planted FIFO or symlink, a stale file) is
    // removed, not opened: O_EXCL|O_NOFOLLOW never follow a link, O_NONBLOCK
    // never waits for a FIFO's reader, and only a regular file is written.
    if (::unlink(tmp_path_.c_str()) != 0 && errno != ENOENT)
        return Error::sys(errno, "metrics: remove " + tmp_path_);
    int fd =
        ::open(tmp_path_.c_str(),
               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0644);
    if (fd < 0) return Error::sys(errno, "metrics: open " + tmp_path_);
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        return Error{EINVAL, "metrics: " + tmp_path_ + " is not a regular file"};
    }
    // Readable by node_exporter whatever our umask.
    ::fchmod(fd, 0644);
    size_t off = 0;
    while (off < buf_.size()) {
        ssize_t n = ::write(fd, buf_.data() + off, buf_.size() - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            int err = errno;
            ::close(fd);
            ::unlink(tmp_path_.c_str());
            return Error::sys(err, "metrics: write " + tmp_path_);
        }
        off += static_cast<size_t>(n);
    }
    // No fsync: readers need atomicity, not durability, and fsync under memory
    // pressure could stall the loop for seconds.
    if (::close(fd) != 0) {
        int err = errno;
        ::unlink(tmp_path_.c_str());
        return Error::sys(err, "metrics: close " + tmp_path_);
    }
    if (::rename(tmp_path_.c_str(), settings_.textfile.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp_path_.c_str());
        return Error::sys(err, "metrics: rename to " + settings_.textfile);
    }
    return ok_status();
}

void MetricsWriter::write_logged(const DaemonState& s) {
    if (!enabled()) return;
    last_write_ = clock_.now();
    written_once_ = true;
    Status st = write(s);
    if (st) {
        ++writes_;
        if (failing_) {
            failing_ = false;
            journal_.log(Event::Info, LOG_NOTICE,
                         "metrics: writing " + settings_.textfile + " works again");
        }
        return;
    }
    ++failures_;
    if (!failing_) {
        failing_ = true;
        journal_.log(Event::Info, LOG_WARNING,
                     st.error().message +
                         " (metrics are not updated until this works; monitoring continues)",
                     {{"OOMGUARD_METRICS_TEXTFILE", settings_.textfile},
                      {"OOMGUARD_ERROR", st.error().message}});
    }
}

void MetricsWriter::on_state(const DaemonState& s) {
    if (!enabled()) return;
    if (written_once_ && clock_.now() - last_write_ < settings_.interval) return;
    write_logged(s);
}

void MetricsWriter::on_trigger(const DaemonState& s, const TriggerReport&) { write_logged(s); }

void MetricsWriter::on_config(const DaemonState& s, const Config& c) {
    node_.set_proc_root(c.paths.proc);
    if (c.metrics.textfile != settings_.textfile || c.metrics.interval != settings_.interval) {
        apply(c.metrics);
        failing_ = false;
    }
    write_logged(s);
}

}  // namespace oomguard
