#include "cgroup/cgroup_targeting.hpp"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <syslog.h>
#include <unistd.h>

#include <utility>

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

bool CgroupTargeting::Repeat::due(const std::string& what, Duration now, bool first) {
    if (!first && what == seen && now - at < kRepeatEvery) return false;
    seen = what;
    at = now;
    return true;
}

// A kubepods limit at or above this share of MemTotal reserves nothing.
constexpr uint64_t kAllocatableAllPercent = 98;

void CgroupTargeting::check_allocatable(uint64_t mem_total) {
    auto a = monitor_.allocatable();
    // The finding, not the numbers around it: logged again when it changes.
    const std::string finding = std::to_string(a.kubernetes) + std::to_string(a.limit_known) +
                                a.error + a.path +
                                (a.limit ? std::to_string(*a.limit) : std::string("max"));
    if (!alloc_log_.due(finding, monotonic_now(), !reload_)) return;
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
    // kubelet sets the kubepods limit to capacity - kubeReserved - systemReserved:
    // a limit of about MemTotal reserves nothing for the system.
    if (a.limit && mem_total && *a.limit >= mem_total / 100 * kAllocatableAllPercent) {
        j.log(
            Event::NoAllocatable, LOG_WARNING,
            a.path + " is limited to " + format_bytes(*a.limit) + ", " +
                std::to_string(*a.limit * 100 / mem_total) + "% of MemTotal " +
                format_bytes(mem_total) +
                ": kubelet reserves nothing for the system (no --kube-reserved/--system-reserved), "
                "so pods can take all of the node's memory; oomguard is then the last line of "
                "defence.",
            {{"OOMGUARD_CGROUP", a.path},
             {"OOMGUARD_KUBEPODS_LIMIT", std::to_string(*a.limit)},
             {"OOMGUARD_KUBEPODS_LIMIT_BYTES", std::to_string(*a.limit)},
             {"OOMGUARD_MEM_TOTAL_BYTES", std::to_string(mem_total)}});
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
    reload_ = configured_once_;
    configured_once_ = true;
    check_allocatable(state.sample.mem_total);
    check_kill_mode(config);
    // Start and reload come before any decision: the first ranking and the names
    // may take their time here (a listing of 100k stale log directories: ~160 ms),
    // so that the first trigger names from a complete ranking.
    refresh(std::max<Duration>(k8s_.scan_budget, std::chrono::seconds(1)), /*sweep=*/true);
    monitor_.names().set_deadline(monotonic_now() + std::chrono::seconds(1));
    last_report_ = monitor_.report(kTopN);
    monitor_.names().set_deadline(Duration::max());
    last_report_at_ = monotonic_now();
    // Which cgroups lead, in order (not their bytes, which move all the time).
    std::string ranking;
    for (const auto& c : last_report_.top) ranking += c.path + "\n";
    for (const auto& c : last_report_.containers) ranking += c.path + "\n";
    if (heaviest_log_.due(ranking, monotonic_now(), !reload_)) {
        std::vector<LogField> fields;
        append_heaviest_fields(last_report_, fields);
        std::string table = heaviest_table(last_report_, kTopN);
        j.log(Event::Heaviest, LOG_INFO,
              heaviest_summary(last_report_) + (table.empty() ? "" : "\n" + table), fields);
    }
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
    Duration next = next_refresh_;
    if (watch_.fd >= 0) next = std::min(next, watch_.next_check);
    // A pod log listing cut short by its slice goes on at the next iteration.
    if (monitor_.names().listing()) next = monotonic_now();
    int64_t left = (next - monotonic_now()).count();
    s.timeout_ns = left > 0 ? left : 0;
    return s;
}

void CgroupTargeting::dispatch(short) {
    check_kill();
    Duration now = monotonic_now();
    if (monitor_.names().listing()) {
        // Small slices, so that a sample (and a trigger) is never kept waiting.
        monitor_.names().set_deadline(now + kListSlice);
        monitor_.names().resume();
        monitor_.names().set_deadline(Duration::max());
        return;
    }
    if (now < next_refresh_) return;
    // Near the threshold the loop must stay quick: no sweep, only the cheap
    // ranking (about 1ms for 1000 pods) that keeps the trigger's scan warm.
    refresh(k8s_.scan_budget, /*sweep=*/!alert_);
    // Keeps names cached for the trigger and last_report() fresh for D-Bus/metrics.
    if (k8s_.log_heaviest) {
        names_deadline(kListSlice);
        last_report_ = monitor_.report(kTopN);
        monitor_.names().set_deadline(Duration::max());
        last_report_at_ = monotonic_now();
    }
    next_refresh_ = monotonic_now() + (alert_ ? kAlertInterval : kCalmInterval);
}

namespace {

void append_victim_fields(const VictimChoice& v, std::vector<LogField>& f) {
    const CgroupInfo& p = v.pod;
    const CgroupInfo& c = v.container;
    f.push_back({"OOMGUARD_CGROUP", p.path});
    f.push_back({"OOMGUARD_WORKING_SET_BYTES", std::to_string(p.working_set)});
    f.push_back({"OOMGUARD_POD_UID", p.pod_uid});
    f.push_back({"OOMGUARD_POD_NAMESPACE", p.pod_namespace});
    f.push_back({"OOMGUARD_POD_NAME", p.pod_name});
    f.push_back({"OOMGUARD_QOS", to_string(p.qos)});
    f.push_back({"OOMGUARD_CONTAINER_NAME", c.container_name});
    f.push_back({"OOMGUARD_CONTAINER_ID", c.container_id});
    f.push_back({"OOMGUARD_CONTAINER_CGROUP", c.path});
    f.push_back({"OOMGUARD_CONTAINER_WORKING_SET_BYTES", std::to_string(c.working_set)});
}

}  // namespace

void CgroupTargeting::describe(std::string& message, std::vector<LogField>& fields) {
    // The target is what was killed: its fields come first and keep the plain
    // names; the heaviest pod (maybe another one: victims go by QoS) is then
    // OOMGUARD_HEAVIEST_*.
    trigger_victim_ = std::exchange(pending_victim_, std::nullopt);
    if (trigger_victim_) append_victim_fields(*trigger_victim_, fields);
    if (!k8s_.log_heaviest) return;
    if (!monitor_.configured()) {
        message += "; heaviest cgroup unknown: " +
                   (monitor_.error().empty() ? "no cgroup root" : monitor_.error());
        return;
    }
    // After the action: name the heaviest as the ranking held it just before
    // (refreshed every second below the warning level). Only a ranking older
    // than that is refreshed now, bounded by scan_budget; the action is done.
    const Duration now = monotonic_now();
    if (!last_report_.valid || last_report_.stale > 0 || last_report_.top.empty() ||
        now - last_report_at_ > 2 * kAlertInterval) {
        if (now - last_refresh_at_ > 2 * kAlertInterval) refresh(k8s_.scan_budget, false);
        names_deadline(k8s_.scan_budget);
        last_report_ = monitor_.report(kTopN);
        monitor_.names().set_deadline(Duration::max());
        last_report_at_ = monotonic_now();
    }
    message += "; " + heaviest_summary(last_report_);
    std::string table = heaviest_table(last_report_, kTopN);
    if (!table.empty()) message += "\n" + table;
    std::vector<LogField> heaviest;
    append_heaviest_fields(last_report_, heaviest);
    for (auto& f : heaviest) {
        if (trigger_victim_ && f.name != "OOMGUARD_SCAN_USEC")
            f.name = "OOMGUARD_HEAVIEST_" + f.name.substr(std::string_view("OOMGUARD_").size());
        fields.push_back(std::move(f));
    }
    fields.push_back({"OOMGUARD_RANKING_AGE_USEC",
                      std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(
                                         monotonic_now() - last_report_at_)
                                         .count())});
    fields.push_back({"OOMGUARD_DESCRIBE_USEC",
                      std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(
                                         last_report_.scan_time + last_report_.report_time)
                                         .count())});
}

void CgroupTargeting::names_deadline(Duration budget) {
    monitor_.names().set_deadline(monotonic_now() + budget);
}

ActionResult CgroupTargeting::act(const Config& config, bool dry_run) {
    ActionResult r;
    pending_victim_.reset();
    const bool fallback = config.action.fallback_sysrq;
    auto not_done = [&](std::string why) {
        // Nothing was killed: sysrq instead (the daemon says so), or a failure.
        r.what = "kill-cgroup: " + std::move(why);
        if (fallback) {
            r.outcome = TriggerOutcome::NotHandled;
            r.what += ", falling back to sysrq: ";
        } else {
            r.outcome = TriggerOutcome::Failed;
            r.what += "; fallback_sysrq = false: nothing done";
        }
        return r;
    };
    if (!monitor_.configured()) return not_done(monitor_.error());
    // The whole choice is bounded by scan_budget: the ranking, and the pod log
    // listings that name pods (partial listings resume in the background).
    const Duration t0 = monotonic_now();
    if (t0 - last_refresh_at_ > std::chrono::milliseconds(100)) refresh(k8s_.scan_budget, false);
    monitor_.names().set_deadline(t0 + k8s_.scan_budget);
    KillPolicy policy{config.kubernetes.exclude_namespaces, config.kubernetes.kill_guaranteed,
                      still_dying()};
    VictimChoice v = choose_victim(monitor_, policy);
    monitor_.names().set_deadline(Duration::max());
    std::string skipped;
    for (const auto& s : v.skipped) skipped += (skipped.empty() ? "" : "; ") + s;
    if (!v.found)
        return not_done("no eligible container (" + v.why_none +
                        (skipped.empty() ? "" : ": " + skipped) + ")");
    const CgroupInfo& c = v.container;
    std::string target =
        "container " +
        (c.container_name.empty() ? c.container_id.substr(0, 12) : c.container_name) + " of pod " +
        v.pod.display_name() + " (" + to_string(v.pod.qos) + ", working set " +
        format_bytes(c.working_set) + ", cgroup " + c.path + ")";
    if (dry_run) {
        r.outcome = TriggerOutcome::DryRun;
        r.what = "dry-run: would kill " + target;
        pending_victim_ = v;
        return r;
    }
    KillOutcome o = kill_container_cgroup(monitor_, c);
    if (!o.ok) return not_done("failed for " + target + ": " + o.error);
    daemon_.record_cgroup_kill();
    r.outcome = TriggerOutcome::Acted;
    r.what = "killed " + target + " via " + o.method + " in " + format_duration(o.elapsed) +
             (o.note.empty() ? "" : " (" + o.note + ")");
    watch_kill(c, o);
    killed_.push_back(c.path);
    pending_victim_ = std::move(v);
    return r;
}

std::vector<std::string> CgroupTargeting::still_dying() {
    // A repeat in the same episode must not pick a container it already killed
    // that is still listed while its tasks die: that would be no new kill.
    const uint64_t episode = daemon_.state().episodes_total;
    if (episode != killed_episode_) {
        killed_.clear();
        killed_episode_ = episode;
    }
    std::erase_if(killed_, [&](const std::string& path) {
        const char* rel = path.c_str();
        while (*rel == '/') ++rel;
        int fd = ::openat(monitor_.root_fd(), rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) return true;  // gone
        long left = cgroup_task_count(fd);
        ::close(fd);
        return left <= 0;  // empty: dead (a new task there would be a new kill)
    });
    return killed_;
}

void CgroupTargeting::watch_kill(const CgroupInfo& c, const KillOutcome& o) {
    // Emptying is watched from the loop: dying multi-GiB tasks stay listed while
    // the kernel frees their memory, and that is not a failure.
    const char* rel = c.path.c_str();
    while (*rel == '/') ++rel;
    int fd = ::openat(monitor_.root_fd(), rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;  // already gone
    if (watch_.fd >= 0) ::close(watch_.fd);
    watch_.fd = fd;
    watch_.label = c.path;
    watch_.v1 = o.method != "cgroup.kill";
    watch_.working_set = c.working_set;
    watch_.avail_at_kill = daemon_.state().sample.mem_available;
    watch_.killed_at = monotonic_now();
    watch_.next_check = watch_.killed_at + kWatchInterval;
}

void CgroupTargeting::check_kill() {
    const Duration now = monotonic_now();
    if (watch_.fd < 0 || now < watch_.next_check) return;
    long left = cgroup_task_count(watch_.fd);
    const Duration after = now - watch_.killed_at;
    if (left <= 0) {
        const uint64_t avail = daemon_.state().sample.mem_available;
        const uint64_t back = avail > watch_.avail_at_kill ? avail - watch_.avail_at_kill : 0;
        daemon_.journal().log(
            Event::Info, LOG_NOTICE,
            "killed container cgroup " + watch_.label + " is empty after " +
                format_duration(after) + ": it held " + format_bytes(watch_.working_set) +
                "; MemAvailable " + format_bytes(watch_.avail_at_kill) + " -> " +
                format_bytes(avail) + " (+" + format_bytes(back) + ")",
            {{"OOMGUARD_CGROUP", watch_.label},
             {"OOMGUARD_WORKING_SET_BYTES", std::to_string(watch_.working_set)},
             {"OOMGUARD_FREED_BYTES", std::to_string(back)},
             {"OOMGUARD_EMPTY_AFTER_USEC",
              std::to_string(
                  std::chrono::duration_cast<std::chrono::microseconds>(after).count())}});
        ::close(watch_.fd);
        watch_.fd = -1;
        return;
    }
    if (after >= kWatchLimit) {
        daemon_.journal().log(Event::Info, LOG_WARNING,
                              "killed container cgroup " + watch_.label + " still lists " +
                                  std::to_string(left) + " task(s) after " + format_duration(after),
                              {{"OOMGUARD_CGROUP", watch_.label}});
        ::close(watch_.fd);
        watch_.fd = -1;
        return;
    }
    if (watch_.v1) {
        // Tasks forked after the kill (v1 has no cgroup.kill to stop them).
        KillOutcome again;
        signal_cgroup_tasks(watch_.fd, watch_.label, again);
    }
    watch_.next_check = now + kWatchInterval;
}

void CgroupTargeting::check_kill_mode(const Config& config) {
    if (config.action.mode != ActionMode::KillCgroup || !monitor_.configured()) return;
    // What kill-cgroup needs: a writable cgroupfs (cgroup.kill on v2) and, for
    // v1 or the fallback to signals, the host's pids (hostPID in a pod).
    std::string problems;
    struct statvfs vfs;
    if (monitor_.hierarchy().version == CgroupVersion::V2 &&
        fstatvfs(monitor_.root_fd(), &vfs) == 0 && (vfs.f_flag & ST_RDONLY))
        problems = monitor_.hierarchy().memory_root +
                   " is mounted read-only (cgroup.kill cannot be written)";
    size_t hidden = 0;
    long tasks = monitor_.kubernetes() ? -1 : 0;
    if (monitor_.kubernetes()) {
        const char* rel = monitor_.kubepods_path().c_str();
        while (*rel == '/') ++rel;
        int fd = ::openat(monitor_.root_fd(), rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            tasks = cgroup_task_count(fd, &hidden);
            ::close(fd);
        }
    }
    if (tasks > 0 && static_cast<size_t>(tasks) == hidden)
        problems += std::string(problems.empty() ? "" : "; ") + "cgroup.procs under " +
                    monitor_.kubepods_path() +
                    " lists only pid 0: the pods' tasks are in another pid namespace (run with "
                    "hostPID: true)";
    if (problems.empty()) return;
    daemon_.journal().log(Event::SensorError, LOG_ERR,
                          "kill-cgroup cannot kill containers here: " + problems +
                              "; every trigger will " +
                              (config.action.fallback_sysrq ? "fall back to sysrq"
                                                            : "fail (fallback_sysrq = false)") +
                              ". Give the daemon a writable cgroupfs and the host's pid namespace, "
                              "or use mode = \"sysrq\"",
                          {{"OOMGUARD_ERROR", problems}});
}

}  // namespace oomguard
