#include "cgroup/cgroup_targeting.hpp"

#include <syslog.h>

#include <utility>

#include "cgroup/heaviest_format.hpp"
#include "cgroup/heaviest_rows.hpp"

namespace oomguard {

CgroupTargeting::CgroupTargeting(Host& host, const Clock& clock)
    : host_(host), clock_(clock), watch_(host.log(), clock), checks_(host.log(), clock) {}

CgroupMonitor::Settings CgroupTargeting::settings_from(const Config& c) {
    CgroupMonitor::Settings s;
    s.cgroup_root = c.paths.cgroup;
    s.proc_root = c.paths.proc;
    s.pod_logs_dir = c.kubernetes.pod_logs_dir;
    s.kubepods_cgroup = c.kubernetes.kubepods_cgroup;
    s.runtime_state = {c.paths.containerd_state, c.paths.crio_storage};
    return s;
}

void CgroupTargeting::refresh(Duration budget, bool sweep) {
    if (ranking_.refresh(budget, sweep)) checks_.log_unclassified_if_new(monitor_);
}

void CgroupTargeting::on_config(const DaemonState& state, const Config& config) {
    k8s_ = config.kubernetes;
    const bool had = monitor_.configured();
    Status st = monitor_.configure(settings_from(config));
    if (!st) {
        // Not fatal: oomguard still watches MemAvailable and triggers.
        host_.log().log(
            Event::SensorError, LOG_WARNING,
            "cannot rank cgroups, triggers will not name the heaviest one: " + st.error().message,
            {{"OOMGUARD_ERROR", st.error().message}});
        return;
    }
    const bool first = !configured_once_;
    if (!had || first) checks_.log_hierarchy(monitor_);
    configured_once_ = true;
    checks_.check_allocatable(monitor_, k8s_, state.sample.mem_total, first);
    checks_.check_kill_mode(monitor_, config);
    // Start and reload come before any decision: the first ranking and the names
    // may take their time here (a listing of 100k stale log directories: ~160 ms),
    // so that the first trigger names from a complete ranking.
    refresh(std::max<Duration>(k8s_.scan_budget, std::chrono::seconds(1)), /*sweep=*/true);
    ranking_.report(std::chrono::seconds(1));
    checks_.log_heaviest(ranking_.last(), kTopN, first);
    next_refresh_ = clock_.now() + (alert_ ? kAlertInterval : kCalmInterval);
}

void CgroupTargeting::on_state(const DaemonState& state) {
    // Below the warning level, or without one below the recovery level (as the
    // victim prediction): a ranking at most 1 s old before any trigger, for the
    // trigger's report to keep its peaks from (kPeakWindow).
    const uint64_t near = state.levels.warn ? state.levels.warn : state.levels.recover;
    bool alert = state.state != MemState::Ok || state.sample.mem_available < near;
    if (alert && !alert_) next_refresh_ = clock_.now();  // warm up now
    alert_ = alert;
}

LoopSource::Spec CgroupTargeting::poll_spec() {
    Spec s;
    if (!monitor_.configured()) return s;
    Duration next = next_refresh_;
    if (watch_.active()) next = std::min(next, watch_.next_check());
    // A pod log listing cut short by its slice goes on at the next iteration.
    const Duration now = clock_.now();
    if (monitor_.names().listing()) next = now;
    int64_t left = (next - now).count();
    s.timeout_ns = left > 0 ? left : 0;
    return s;
}

void CgroupTargeting::dispatch(short) {
    watch_.check(host_.state().sample.mem_available);
    Duration now = clock_.now();
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
    if (k8s_.log_heaviest) ranking_.report(kListSlice);
    next_refresh_ = clock_.now() + (alert_ ? kAlertInterval : kCalmInterval);
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

int64_t usec(Duration d) {
    return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

}  // namespace

void CgroupTargeting::describe(std::string& message, std::vector<LogField>& fields) {
    // The target is what was killed: its fields come first and keep the plain
    // names; the heaviest pod (maybe another one: victims go by QoS) is then
    // OOMGUARD_HEAVIEST_*.
    const Duration trigger_at = acted_ ? acted_at_ : clock_.now();
    acted_ = false;
    trigger_victim_ = kill_.take_victim();
    if (trigger_victim_) append_victim_fields(*trigger_victim_, fields);
    if (!k8s_.log_heaviest) return;
    if (!monitor_.configured()) {
        message += "; heaviest cgroup unknown: " +
                   (monitor_.error() ? monitor_.error()->message : "no cgroup root");
        return;
    }
    // After the action, never before it: a fast leak outgrows a ranking read
    // before the trigger (a container started since, or grown, in a pod the
    // last report showed small), and without warn_available the background
    // reads only every 10 s. So the usages are re-read now unless the kill
    // action already read them for this trigger, bounded by scan_budget, and
    // the report lists the heaviest pod's containers now.
    // The kill itself races those reads (the victim's memory may be going
    // already): the last report from just before keeps its peaks.
    const Duration before_age = trigger_at - ranking_.reported_at();
    if (ranking_.read_at() < trigger_at) refresh(k8s_.scan_budget, false);
    const PeakMerge peaks =
        ranking_.report_after_trigger(k8s_.scan_budget, trigger_at, kPeakWindow);
    const HeaviestReport& r = ranking_.last();
    message += "; " + heaviest_summary(r);
    std::string table = heaviest_table(r, kTopN);
    if (!table.empty()) message += "\n" + table;
    std::vector<LogField> heaviest;
    append_heaviest_fields(r, heaviest);
    for (auto& f : heaviest) {
        if (trigger_victim_ && f.name != "OOMGUARD_SCAN_USEC")
            f.name = "OOMGUARD_HEAVIEST_" + f.name.substr(std::string_view("OOMGUARD_").size());
        fields.push_back(std::move(f));
    }
    // The age of the readings the pods are ranked by, not of the report built
    // from them. Pods the refresh's deadline left unread are older still.
    fields.push_back(
        {"OOMGUARD_RANKING_AGE_USEC", std::to_string(usec(clock_.now() - ranking_.data_at()))});
    if (r.stale > 0) fields.push_back({"OOMGUARD_RANKING_STALE", std::to_string(r.stale)});
    if (peaks.pods + peaks.containers > 0) {
        fields.push_back({"OOMGUARD_RANKING_PEAKS", std::to_string(peaks.pods + peaks.containers)});
        fields.push_back({"OOMGUARD_RANKING_PEAKS_AGE_USEC", std::to_string(usec(before_age))});
    }
    fields.push_back({"OOMGUARD_DESCRIBE_USEC", std::to_string(usec(r.scan_time + r.report_time))});
}

std::optional<HeaviestRow> CgroupTargeting::target() {
    return trigger_target_row(last_report(), trigger_victim_);
}

ActionResult CgroupTargeting::act(const Config& config, bool dry_run) {
    acted_at_ = clock_.now();
    acted_ = true;
    return kill_.act(config, dry_run);
}

}  // namespace oomguard
