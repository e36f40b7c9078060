#include "cgroup/cgroup_targeting.hpp"

#include <syslog.h>

#include "cgroup/heaviest_format.hpp"

namespace oomguard {

void CgroupTargeting::install() {
    // The daemon's first sample (and maybe a trigger) comes before on_config():
    // be ready for it. Problems are logged by on_config().
    k8s_ = daemon_.config().kubernetes;
    (void)monitor_.configure(settings_from(daemon_.config()));
    daemon_.set_trigger_hook(this);
    daemon_.add_sink(this);
    daemon_.add_source(this);
}

CgroupMonitor::Settings CgroupTargeting::settings_from(const Config& c) {
    CgroupMonitor::Settings s;
    s.cgroup_root = c.paths.cgroup;
    s.proc_root = c.paths.proc;
    s.pod_logs_dir = c.kubernetes.pod_logs_dir;
    s.kubepods_cgroup = c.kubernetes.kubepods_cgroup;
    return s;
}

void CgroupTargeting::refresh(Duration budget, bool sweep) {
    if (monitor_.refresh(budget, sweep).restructured) log_unclassified_if_new();
    last_refresh_at_ = monotonic_now();
}

void CgroupTargeting::log_unclassified_if_new() {
    const auto& u = monitor_.unclassified();
    std::string sig;
    for (const auto& e : u) sig += e.path + "\n";
    if (sig == unclassified_seen_) return;
    unclassified_seen_ = sig;
    if (u.empty()) return;
    std::string msg = std::to_string(u.size()) + " cgroup(s) under " + monitor_.kubepods_path() +
                      " are not kubelet's and are left out of the ranking:";
    for (size_t i = 0; i < u.size() && i < 5; ++i) msg += "\n  " + u[i].path + ": " + u[i].reason;
    if (u.size() > 5) msg += "\n  (" + std::to_string(u.size() - 5) + " more)";
    daemon_.journal().log(Event::Info, LOG_NOTICE, msg,
                          {{"OOMGUARD_UNCLASSIFIED", std::to_string(u.size())}});
}

void CgroupTargeting::check_allocatable(uint64_t mem_total) {
    auto a = monitor_.allocatable();
    Journal& j = daemon_.journal();
    if (!a.kubernetes) {
        j.log(
            Event::Info, LOG_INFO,
            "no kubepods cgroup under " + monitor_.hierarchy().memory_root +
                (k8s_.kubepods_cgroup.empty() ? "" : " (looked for " + k8s_.kubepods_cgroup + ")") +
                ": not a Kubernetes node, ranking the top-level cgroups instead");
        return;
    }
    if (!a.limit_known) {
        j.log(Event::Info, LOG_WARNING, "node allocatable check: " + a.error);
        return;
    }
    if (a.limit) {
        std::string share =
            mem_total ? " (" + std::to_string(*a.limit * 100 / mem_total) + "% of MemTotal)" : "";
        j.log(Event::Info, LOG_INFO,
              "node allocatable is enforced: " + a.path + " is limited to " +
                  format_bytes(*a.limit) + share,
              {{"OOMGUARD_KUBEPODS_LIMIT_BYTES", std::to_string(*a.limit)},
               {"OOMGUARD_CGROUP", a.path}});
        return;
    }
    j.log(Event::NoAllocatable, LOG_WARNING,
          a.path +
              " has no memory limit: kubelet does not enforce node allocatable for pods "
              "(--enforce-node-allocatable=pods with --kube-reserved/--system-reserved). Pods can "
              "then take "
              "all of the node's memory, leaving none for the kubelet, the container runtime and "
              "the system; "
              "the node may hang or the kernel may kill system daemons before kubelet's eviction "
              "reacts. "
              "oomguard is then the last line of defence.",
          {{"OOMGUARD_CGROUP", a.path}, {"OOMGUARD_KUBEPODS_LIMIT", "max"}});
}

void CgroupTargeting::on_config(const DaemonState& state, const Config& config) {
    k8s_ = config.kubernetes;
    Journal& j = daemon_.journal();
    const bool had = monitor_.configured();
    Status st = monitor_.configure(settings_from(config));
    if (!st) {
        // Not fatal: oomguard still watches MemAvailable and triggers.
        j.log(Event::SensorError, LOG_WARNING,
              "cannot rank cgroups, triggers will not name the heaviest one: " + st.error().message,
              {{"OOMGUARD_ERROR", st.error().message}});
        return;
    }
    if (!had || !configured_once_)
        j.log(Event::Info, LOG_INFO,
              "cgroups: " + monitor_.hierarchy().layout +
                  (monitor_.kubernetes() ? ", kubepods at " + monitor_.kubepods_path() + " (" +
                                               to_string(monitor_.driver()) + " driver)"
                                         : ""));
    configured_once_ = true;
    check_allocatable(state.sample.mem_total);
    refresh(k8s_.scan_budget, /*sweep=*/true);
    last_report_ = monitor_.report(kTopN);
    std::vector<LogField> fields;
    append_heaviest_fields(last_report_, fields);
    std::string table = heaviest_table(last_report_, kTopN);
    j.log(Event::Heaviest, LOG_INFO,
          heaviest_summary(last_report_) + (table.empty() ? "" : "\n" + table), fields);
    next_refresh_ = monotonic_now() + (alert_ ? kAlertInterval : kCalmInterval);
}

void CgroupTargeting::on_state(const DaemonState& state) {
    bool alert = state.state != MemState::Ok;
    if (alert && !alert_) next_refresh_ = monotonic_now();  // warm up now
    alert_ = alert;
}

LoopSource::Spec CgroupTargeting::poll_spec() {
    Spec s;
    if (!monitor_.configured()) return s;
    int64_t left = (next_refresh_ - monotonic_now()).count();
    s.timeout_ns = left > 0 ? left : 0;
    return s;
}

void CgroupTargeting::dispatch(short) {
    Duration now = monotonic_now();
    if (now < next_refresh_) return;
    // Near the threshold the loop must stay quick: no sweep, only the cheap
    // ranking (about 1ms for 1000 pods) that keeps the trigger's scan warm.
    refresh(k8s_.scan_budget, /*sweep=*/!alert_);
    // Keeps names cached for the trigger and last_report() fresh for D-Bus/metrics.
    if (k8s_.log_heaviest) last_report_ = monitor_.report(kTopN);
    next_refresh_ = monotonic_now() + (alert_ ? kAlertInterval : kCalmInterval);
}

void CgroupTargeting::describe(std::string& message, std::vector<LogField>& fields) {
    if (!k8s_.log_heaviest) return;
    if (!monitor_.configured()) {
        message += "; heaviest cgroup unknown: " +
                   (monitor_.error().empty() ? "no cgroup root" : monitor_.error());
        return;
    }
    // Bounded: refresh() stops at the budget; report() reads the few cgroups it shows.
    refresh(k8s_.scan_budget, /*sweep=*/false);
    last_report_ = monitor_.report(kTopN);
    message += "; " + heaviest_summary(last_report_);
    std::string table = heaviest_table(last_report_, kTopN);
    if (!table.empty()) message += "\n" + table;
    append_heaviest_fields(last_report_, fields);
    fields.push_back({"OOMGUARD_DESCRIBE_USEC",
                      std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(
                                         last_report_.scan_time + last_report_.report_time)
                                         .count())});
}

bool CgroupTargeting::act(const Config& config, bool dry_run, std::string& what) {
    if (!monitor_.configured()) {
        what = "kill-cgroup: " + monitor_.error();
        if (config.action.fallback_sysrq) return false;
        what += "; fallback_sysrq = false: nothing done";
        return true;
    }
    // describe() refreshed just now unless log_heaviest is off.
    if (monotonic_now() - last_refresh_at_ > std::chrono::milliseconds(100))
        refresh(k8s_.scan_budget, false);
    KillPolicy policy{config.kubernetes.exclude_namespaces, config.kubernetes.kill_guaranteed};
    VictimChoice v = choose_victim(monitor_, policy);
    std::string skipped;
    for (const auto& s : v.skipped) skipped += (skipped.empty() ? "" : "; ") + s;
    if (!v.found) {
        what = "kill-cgroup: no eligible container (" + v.why_none +
               (skipped.empty() ? "" : ": " + skipped) + ")";
        if (config.action.fallback_sysrq) {
            what += ", falling back to sysrq: ";
            return false;  // the daemon writes 'f' and says so
        }
        what += "; fallback_sysrq = false: nothing done";
        return true;
    }
    const CgroupInfo& c = v.container;
    std::string target =
        "container " +
        (c.container_name.empty() ? c.container_id.substr(0, 12) : c.container_name) + " of pod " +
        v.pod.display_name() + " (" + to_string(v.pod.qos) + ", working set " +
        format_bytes(c.working_set) + ", cgroup " + c.path + ")";
    if (dry_run) {
        what = "dry-run: would kill " + target;
        return true;
    }
    KillOutcome o = kill_container_cgroup(monitor_, c);
    if (o.ok) {
        daemon_.record_cgroup_kill();
        what = "killed " + target + " via " + o.method + " in " + format_duration(o.elapsed);
        return true;
    }
    what = "kill-cgroup failed for " + target + ": " + o.error;
    if (config.action.fallback_sysrq) {
        what += ", falling back to sysrq: ";
        return false;
    }
    return true;
}

}  // namespace oomguard
