// PropertiesChanged: what the bus thread announces of each new snapshot (the
// memory values at most once per kMemAnnounceInterval).
#include "bus/bus_thread.hpp"

namespace oomguard {

// Every field read here wakes the thread when it changes: keep announced_differ()
// in bus_publisher.cpp in step.
BusThread::Announced BusThread::current() const {
    const DaemonState& s = snap_.state;
    Announced a;
    a.mem_available = s.sample.mem_available;
    a.mem_total = s.sample.mem_total;
    a.threshold = s.levels.min;
    a.warn = s.levels.warn;
    a.state = s.state;
    a.mode = s.mode;
    a.dry_run = s.dry_run;
    a.triggers = s.triggers_total;
    a.failures = s.trigger_failures_total;
    a.last_trigger = s.last_trigger_realtime_usec;
    a.oom_kills = s.oom_kills_total;
    a.victim_pid = s.last_oom_kill.pid;
    a.victim_usec = s.last_oom_kill.realtime_usec;
    a.predicted_pid = s.prediction.pid;
    a.predicted_score = s.prediction.oom_score;
    a.audit = s.audit;
    if (snap_.last_trigger_target) a.target = *snap_.last_trigger_target;
    a.last_error = s.last_error;
    return a;
}

void BusThread::announce(Duration now) {
    if (link_ != Link::Named || broken_) return;
    const Announced cur = current();
    Announced& a = announced_;
    std::vector<std::string> names;
    auto changed = [&names](bool differs, const char* name) {
        if (differs) names.emplace_back(name);
    };
    changed(cur.threshold != a.threshold, "Threshold");
    changed(cur.warn != a.warn, "WarnThreshold");
    changed(cur.state != a.state, "State");
    changed(cur.mode != a.mode, "Mode");
    changed(cur.dry_run != a.dry_run, "DryRun");
    changed(cur.triggers != a.triggers, "TriggerCount");
    changed(cur.failures != a.failures, "TriggerFailures");
    changed(cur.last_trigger != a.last_trigger, "LastTrigger");
    changed(!(cur.target == a.target), "LastTriggerTarget");
    changed(cur.oom_kills != a.oom_kills, "KernelOomKills");
    changed(cur.victim_pid != a.victim_pid || cur.victim_usec != a.victim_usec, "LastVictim");
    changed(cur.predicted_pid != a.predicted_pid || cur.predicted_score != a.predicted_score,
            "PredictedVictim");
    changed(!(cur.audit == a.audit), "AuditFindings");
    changed(cur.last_error != a.last_error, "LastError");
    const bool mem_changed = cur.mem_available != a.mem_available || cur.mem_total != a.mem_total;
    const bool mem_due = now - last_mem_announce_ >= kMemAnnounceInterval;
    if (mem_changed && mem_due) {
        changed(cur.mem_available != a.mem_available, "MemAvailable");
        changed(cur.mem_total != a.mem_total, "MemTotal");
        last_mem_announce_ = now;
        mem_pending_ = false;
    } else if (mem_changed) {
        mem_pending_ = true;  // link_spec() wakes the loop when it is due
    }
    if (names.empty()) return;
    // Keep the old memory values when they were held back.
    const uint64_t held_avail = a.mem_available, held_total = a.mem_total;
    a = cur;
    if (mem_changed && !mem_due) {
        a.mem_available = held_avail;
        a.mem_total = held_total;
    }
    emit_properties_changed(names);
}

}  // namespace oomguard
