#include "cgroup/oom_reporter.hpp"

#include <poll.h>
#include <syslog.h>

namespace oomguard {
namespace {

std::string u64(uint64_t v) { return std::to_string(v); }

std::string who(const OomKillInfo& i) {
    std::string s = "pid " + std::to_string(i.pid) + " (" + i.task + ")";
    if (!i.pod_name.empty())
        s += " of pod " + i.pod_namespace + "/" + i.pod_name;
    else if (!i.pod_uid.empty())
        s += " of pod " + i.pod_uid;
    if (!i.container_name.empty())
        s += ", container " + i.container_name;
    else if (!i.container_id.empty())
        s += ", container " + i.container_id.substr(0, 12);
    if (!i.qos.empty() && i.qos != "Unknown") s += " (" + i.qos + ")";
    if (!i.cgroup.empty()) s += " in cgroup " + i.cgroup;
    return s;
}

void victim_fields(const OomKillInfo& i, std::vector<LogField>& f) {
    f.push_back({"OOMGUARD_VICTIM_PID", std::to_string(i.pid)});
    f.push_back({"OOMGUARD_VICTIM_TASK", i.task});
    f.push_back({"OOMGUARD_VICTIM_RSS_BYTES", u64(i.rss_bytes)});
    f.push_back({"OOMGUARD_CONSTRAINT", i.constraint});
    f.push_back({"OOMGUARD_CGROUP", i.cgroup});
    if (!i.pod_uid.empty()) {
        f.push_back({"OOMGUARD_POD_UID", i.pod_uid});
        f.push_back({"OOMGUARD_POD_NAMESPACE", i.pod_namespace});
        f.push_back({"OOMGUARD_POD_NAME", i.pod_name});
        f.push_back({"OOMGUARD_CONTAINER_NAME", i.container_name});
        f.push_back({"OOMGUARD_CONTAINER_ID", i.container_id});
        f.push_back({"OOMGUARD_QOS", i.qos});
    }
}

}  // namespace

OomKillInfo attribute_oom_kill(const KernelOomEvent& e, CgroupMonitor& monitor) {
    OomKillInfo i;
    i.realtime_usec = realtime_usec();
    i.pid = e.pid;
    i.task = e.task;
    i.cgroup = e.task_memcg;
    i.constraint = e.constraint;
    i.memcg = e.memcg_oom;
    i.rss_bytes = e.rss_bytes;
    KubePath kp = classify_cgroup_path(e.task_memcg);
    if (!kp.in_kubepods || kp.pod_uid.empty()) return i;
    i.pod_uid = kp.pod_uid;
    i.container_id = kp.container_id;
    i.qos = to_string(kp.qos);
    PodNameResolver& names = monitor.names();
    if (const auto* p = names.pod(kp.pod_uid)) {
        i.pod_namespace = p->namespace_;
        i.pod_name = p->name;
    }
    if (!kp.container_id.empty()) {
        // The same rule as the ranking's (ContainerNamer), the pod's other containers as siblings.
        CgroupInfo pod;
        pod.kind = CgroupKind::Pod;
        pod.pod_uid = kp.pod_uid;
        pod.path = e.task_memcg.substr(0, e.task_memcg.rfind('/'));
        ContainerSlot s = monitor.name_container(pod, kp.container_id);
        i.container_name = s.name;
        if (i.pod_name.empty() && !s.pod_name.empty()) {
            i.pod_namespace = s.pod_namespace;
            i.pod_name = s.pod_name;
        }
    }
    return i;
}

void OomReporter::install() {
    // Open now: a trigger in the daemon's first tick comes before on_config().
    on_config(daemon_.state(), daemon_.config());
    daemon_.add_source(this);
    daemon_.add_sink(this);
}

void OomReporter::on_config(const DaemonState&, const Config& config) {
    if (config.paths.proc != proc_root_ || !meminfo_ok_) {
        proc_root_ = config.paths.proc;
        meminfo_ok_ = static_cast<bool>(meminfo_.open(proc_root_));
    }
    if (config.paths.kmsg == kmsg_path_ && kmsg_.is_open()) return;
    kmsg_path_ = config.paths.kmsg;
    Status st = kmsg_.open(kmsg_path_);
    if (!st) {
        if (kmsg_error_ != st.error().message)
            daemon_.journal().log(
                Event::Info, LOG_WARNING,
                "cannot read the kernel's OOM reports, victims will not be named: " +
                    st.error().message,
                {{"OOMGUARD_ERROR", st.error().message}});
        kmsg_error_ = st.error().message;
        return;
    }
    kmsg_error_.clear();
}

void OomReporter::on_trigger(const DaemonState& state, bool ok) {
    // Only a written sysrq 'f' makes the kernel's next node-wide kill ours: a
    // dry-run wrote nothing, and kill-cgroup's kill is no kernel OOM kill.
    if (!ok || state.last_outcome != TriggerOutcome::Acted || state.last_action_kind != "sysrq")
        return;
    triggered_ = true;
    trigger_at_ = monotonic_now();
    manual_oom_ts_usec_ = 0;
    avail_at_trigger_ = state.sample.mem_available;
}

LoopSource::Spec OomReporter::poll_spec() {
    Spec s;
    s.fd = kmsg_.poll_fd();
    s.events = POLLIN;
    const Duration now = monotonic_now();
    auto at = [&](Duration when) {
        int64_t left = std::max<int64_t>(0, (when - now).count());
        if (s.timeout_ns < 0 || left < s.timeout_ns) s.timeout_ns = left;
    };
    if (kmsg_.is_open() && s.fd < 0) at(next_tail_);  // a regular file: tail it
    if (kmsg_.more()) at(now);                        // capped read: the rest next round
    if (assembler_.pending()) at(pending_since_ + std::chrono::milliseconds(50));
    if (track_.active) at(track_.next_sample);
    return s;
}

void OomReporter::dispatch(short) {
    drain();
    const Duration now = monotonic_now();
    if (now >= next_tail_) next_tail_ = now + std::chrono::milliseconds(100);
    if (assembler_.pending() && now - pending_since_ >= std::chrono::milliseconds(50)) {
        events_.clear();
        assembler_.flush(events_);
        for (const auto& e : events_) handle(e);
    }
    if (track_.active && now >= track_.next_sample) sample(now);
}

void OomReporter::drain() {
    if (!kmsg_.is_open()) return;
    events_.clear();
    kmsg_.read_available([&](const KmsgRecord& r) {
        bool was_pending = assembler_.pending();
        assembler_.feed(r, events_);
        if (assembler_.pending() && !was_pending) pending_since_ = monotonic_now();
    });
    if (!kmsg_.is_open() && kmsg_.error() != kmsg_error_) {
        kmsg_error_ = kmsg_.error();
        daemon_.journal().log(
            Event::Info, LOG_WARNING,
            "stopped reading the kernel's OOM reports, victims will not be named: " + kmsg_error_,
            {{"OOMGUARD_ERROR", kmsg_error_}});
    }
    // handle() may log and sample; take a copy since it does not feed the assembler.
    std::vector<KernelOomEvent> ready;
    ready.swap(events_);
    for (const auto& e : ready) handle(e);
}

void OomReporter::handle(const KernelOomEvent& e) {
    Journal& j = daemon_.journal();
    const Duration now = monotonic_now();
    switch (e.type) {
        case KernelOomEvent::Type::ManualOom:
            // Our 'f' arrived; the kill (or "ignored") follows.
            if (triggered_ && now - trigger_at_ < kAfterTrigger) manual_oom_ts_usec_ = e.ts_usec;
            return;
        case KernelOomEvent::Type::RequestIgnored:
            // The write succeeded, so the trigger still counts (triggers_total); this
            // entry and oomguard_oom_requests_ignored_total say nothing was killed.
            daemon_.record_oom_request_ignored();
            j.log(Event::Victim, LOG_WARNING,
                  "the kernel ignored the OOM request: it found no eligible task (all are "
                  "unkillable or have oom_score_adj -1000), nothing was killed and no memory "
                  "comes back from this trigger",
                  {{"OOMGUARD_VICTIM", "none"},
                   {"OOMGUARD_OOM_REQUESTS_IGNORED",
                    std::to_string(daemon_.state().oom_requests_ignored_total)}});
            return;
        case KernelOomEvent::Type::Kill:
            break;
    }
    if (e.group_member && merge_group_member(e)) return;
    OomKillInfo info = attribute_oom_kill(e, monitor_);
    info.after_trigger = !e.memcg_oom && triggered_ && now - trigger_at_ < kAfterTrigger;
    daemon_.record_oom_kill(info);
    if (e.memcg_oom) {
        memcg_group_leader_ = e.task_memcg;
        std::vector<LogField> f;
        victim_fields(info, f);
        f.push_back({"OOMGUARD_KERNEL_OOM_KILLS", u64(daemon_.state().kernel_oom_kills_total)});
        if (!e.oom_memcg.empty()) f.push_back({"OOMGUARD_OOM_MEMCG", e.oom_memcg});
        j.log(Event::KernelOom, LOG_NOTICE,
              "memory cgroup limit reached: the kernel OOM-killed " + who(info) + ", RSS " +
                  format_bytes(info.rss_bytes) +
                  (e.oom_memcg.empty() ? "" : " (limit of " + e.oom_memcg + ")"),
              f);
        return;
    }
    // A node-wide kill: watch the memory come back, then log it.
    if (track_.active) finish_victim();
    track_ = Tracking{};
    track_.active = true;
    track_.info = info;
    track_.ts_usec = e.ts_usec;
    track_.started = now;
    MemSample s;
    const bool have = meminfo_ok_ && meminfo_.sample(s);
    if (info.after_trigger) {
        track_.baseline = avail_at_trigger_;
        track_.from = trigger_at_;
    } else {
        track_.baseline = have ? s.mem_available : 0;
        track_.from = now;
    }
    track_.best = have ? s.mem_available : track_.baseline;
    track_.best_at = now;
    track_.next_sample = now + kSampleEvery;
    if (!meminfo_ok_) finish_victim();
}

namespace {

bool same_or_below(std::string_view path, std::string_view group) {
    return !group.empty() && path.substr(0, group.size()) == group &&
           (path.size() == group.size() || path[group.size()] == '/');
}

}  // namespace

// The further kills of a memory.oom.group belong to the kill whose victim was in
// that group: one kill, one entry, the container's tasks and RSS together, the
// memory watched until it has all come back. Counting each task as a victim
// logged the first victim twice and ended the memory watch a millisecond later.
bool OomReporter::merge_group_member(const KernelOomEvent& e) {
    if (e.memcg_oom) return same_or_below(memcg_group_leader_, e.task_memcg);
    if (!track_.active || !same_or_below(track_.info.cgroup, e.task_memcg)) return false;
    if (e.pid != track_.info.pid) {
        ++track_.tasks;
        track_.info.rss_bytes += std::min(e.rss_bytes, UINT64_MAX - track_.info.rss_bytes);
    }
    return true;
}

void OomReporter::sample(Duration now) {
    MemSample s;
    if (meminfo_.sample(s) && s.mem_available > track_.best) {
        track_.best = s.mem_available;
        track_.best_at = now;
    }
    const bool settled = now - track_.best_at >= kSettled && track_.best > track_.baseline;
    if (settled || now - track_.started >= kTrackFor)
        finish_victim();
    else
        track_.next_sample = now + kSampleEvery;
}

void OomReporter::finish_victim() {
    if (!track_.active) return;
    track_.active = false;
    const OomKillInfo& i = track_.info;
    const uint64_t regained = track_.best > track_.baseline ? track_.best - track_.baseline : 0;
    const auto within =
        std::chrono::duration_cast<std::chrono::microseconds>(track_.best_at - track_.from);
    std::string msg = "the OOM killer killed " + who(i) +
                      (track_.tasks > 1 ? " with its memory.oom.group (" +
                                              std::to_string(track_.tasks) + " tasks)"
                                        : "") +
                      ", RSS " + format_bytes(i.rss_bytes);
    std::vector<LogField> f;
    victim_fields(i, f);
    f.push_back({"OOMGUARD_KILLED_TASKS", std::to_string(track_.tasks)});
    if (meminfo_ok_) {
        msg += "; MemAvailable " + format_bytes(track_.baseline) + " -> " +
               format_bytes(track_.best) + " (+" + format_bytes(regained) + ") within " +
               format_duration(track_.best_at - track_.from) +
               (i.after_trigger ? " of oomguard's trigger" : " of the report");
        f.push_back({"OOMGUARD_REGAINED_BYTES", u64(regained)});
        f.push_back({"OOMGUARD_REGAIN_USEC", std::to_string(within.count())});
        f.push_back({"OOMGUARD_MEM_AVAILABLE_BYTES", u64(track_.best)});
    }
    if (i.after_trigger) {
        // From the kernel taking our 'f' to the kill, both in the kernel's clock.
        const int64_t lat = manual_oom_ts_usec_ ? static_cast<int64_t>(track_.ts_usec) -
                                                      static_cast<int64_t>(manual_oom_ts_usec_)
                                                : -1;
        if (lat >= 0 && lat < 60'000'000) {
            msg += "; killed " + format_duration(std::chrono::microseconds(lat)) +
                   " after the trigger";
            f.push_back({"OOMGUARD_KILL_LATENCY_USEC", std::to_string(lat)});
        }
    } else {
        msg += " (not after an oomguard trigger)";
    }
    f.push_back({"OOMGUARD_AFTER_TRIGGER", i.after_trigger ? "1" : "0"});
    daemon_.journal().log(Event::Victim, LOG_WARNING, msg, f);
}

}  // namespace oomguard
