#include "cgroup/oom_reporter.hpp"

#include <poll.h>
#include <syslog.h>

namespace oomguard {
namespace {

std::string u64(uint64_t v) { return std::to_string(v); }

std::string who(const OomKill& k) {
    const CgroupRef& i = k.cgroup;
    std::string s = "pid " + std::to_string(k.pid) + " (" + k.task + ")";
    if (!i.pod_name.empty())
        s += " of pod " + i.pod_namespace + "/" + i.pod_name;
    else if (!i.pod_uid.empty())
        s += " of pod " + i.pod_uid;
    if (const std::string c = i.container(); !c.empty()) s += ", container " + c;
    if (!i.qos.empty() && i.qos != "Unknown") s += " (" + i.qos + ")";
    if (!i.path.empty()) s += " in cgroup " + i.path;
    return s;
}

void victim_fields(const OomKill& k, std::vector<LogField>& f) {
    const CgroupRef& i = k.cgroup;
    f.push_back({"OOMGUARD_VICTIM_PID", std::to_string(k.pid)});
    f.push_back({"OOMGUARD_VICTIM_TASK", k.task});
    f.push_back({"OOMGUARD_VICTIM_RSS_BYTES", u64(k.rss_bytes)});
    f.push_back({"OOMGUARD_CONSTRAINT", k.constraint});
    f.push_back({"OOMGUARD_CGROUP", i.path});
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

OomKill attribute_oom_kill(const KernelOomEvent& e, CgroupMonitor& monitor) {
    OomKill k;
    k.realtime_usec = realtime_usec();
    k.pid = e.pid;
    k.task = e.task;
    k.cgroup.path = e.task_memcg;
    k.constraint = e.constraint;
    k.memcg = e.memcg_oom;
    k.rss_bytes = e.rss_bytes;
    KubePath kp = classify_cgroup_path(e.task_memcg);
    if (!kp.in_kubepods || kp.pod_uid.empty()) return k;
    CgroupRef& i = k.cgroup;
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
    return k;
}

OomReporter::OomReporter(Host& host, CgroupMonitor& monitor, MeminfoReader& meminfo,
                         const Clock& clock)
    : host_(host), monitor_(monitor), meminfo_(meminfo), clock_(clock) {
    on_config(host_.state(), host_.config());
}

void OomReporter::on_config(const DaemonState&, const Config& config) {
    if (config.paths.kmsg == kmsg_path_ && kmsg_.is_open()) return;
    kmsg_path_ = config.paths.kmsg;
    Status st = kmsg_.open(kmsg_path_);
    if (!st) {
        if (kmsg_error_ != st.error().message)
            host_.log().log(Event::Info, LOG_WARNING,
                            "cannot read the kernel's OOM reports, victims will not be named: " +
                                st.error().message,
                            {{"OOMGUARD_ERROR", st.error().message}});
        kmsg_error_ = st.error().message;
        return;
    }
    kmsg_error_.clear();
}

void OomReporter::on_trigger(const DaemonState&, const TriggerReport& t) {
    // Only a written sysrq 'f' makes the kernel's next node-wide kill ours: a
    // dry-run wrote nothing, and kill-cgroup's kill is no kernel OOM kill.
    if (!t.wrote_sysrq()) return;
    triggered_ = true;
    trigger_at_ = clock_.now();
    manual_oom_ts_usec_ = 0;
    avail_at_trigger_ = t.mem_available;
}

LoopSource::Spec OomReporter::poll_spec() {
    Spec s;
    s.fd = kmsg_.poll_fd();
    s.events = POLLIN;
    const Duration now = clock_.now();
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
    const Duration now = clock_.now();
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
    auto read = kmsg_.read_available([&](const KmsgRecord& r) {
        bool was_pending = assembler_.pending();
        assembler_.feed(r, events_);
        if (assembler_.pending() && !was_pending) pending_since_ = clock_.now();
    });
    if (!read && read.error().message != kmsg_error_) {
        kmsg_error_ = read.error().message;
        host_.log().log(
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
    Log& j = host_.log();
    const Duration now = clock_.now();
    switch (e.type) {
        case KernelOomEvent::Type::ManualOom:
            // Our 'f' arrived; the kill (or "ignored") follows.
            if (triggered_ && now - trigger_at_ < kAfterTrigger) manual_oom_ts_usec_ = e.ts_usec;
            return;
        case KernelOomEvent::Type::RequestIgnored:
            // The write succeeded, so the trigger still counts (triggers_total); this
            // entry and oomguard_oom_requests_ignored_total say nothing was killed.
            host_.record_oom_request_ignored();
            j.log(Event::Victim, LOG_WARNING,
                  "the kernel ignored the OOM request: it found no eligible task (all are "
                  "unkillable or have oom_score_adj -1000), nothing was killed and no memory "
                  "comes back from this trigger",
                  {{"OOMGUARD_VICTIM", "none"},
                   {"OOMGUARD_OOM_REQUESTS_IGNORED",
                    std::to_string(host_.state().oom_requests_ignored_total)}});
            return;
        case KernelOomEvent::Type::Kill:
            break;
    }
    if (e.group_member && merge_group_member(e)) return;
    OomKill info = attribute_oom_kill(e, monitor_);
    info.after_trigger = !e.memcg_oom && triggered_ && now - trigger_at_ < kAfterTrigger;
    host_.record_oom_kill(info);
    if (e.memcg_oom) {
        memcg_group_leader_ = e.task_memcg;
        std::vector<LogField> f;
        victim_fields(info, f);
        // Every kernel OOM kill (what D-Bus KernelOomKills counts), and of them
        // the memcg ones.
        f.push_back({"OOMGUARD_KERNEL_OOM_KILLS", u64(host_.state().oom_kills_total)});
        f.push_back({"OOMGUARD_MEMCG_OOM_KILLS", u64(host_.state().memcg_oom_kills_total)});
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
    const bool have = meminfo_.sample(s);
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
    track_.meminfo = have;
    if (!have) finish_victim();  // nothing to watch
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
    if (!track_.active || !same_or_below(track_.info.cgroup.path, e.task_memcg)) return false;
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
    const OomKill& i = track_.info;
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
    if (track_.meminfo) {
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
        // Was it the task the predictor named at the trigger? (issue 14)
        const PredictedTask& p = host_.state().trigger_prediction;
        if (p.pid > 0) {
            // The kernel's victim itself, or a task of the memory.oom.group it
            // killed with it (the prediction is up to a scan old; tasks of one
            // container trade places as they grow).
            const bool by_pid = p.pid == i.pid;
            const bool by_group = !by_pid && track_.tasks > 1 && !p.cgroup.path.empty() &&
                                  same_or_below(p.cgroup.path, i.cgroup.path);
            const bool matched = by_pid || by_group;
            host_.record_prediction_result(matched);
            msg += by_pid ? "; as predicted"
                   : by_group
                       ? "; as predicted (pid " + std::to_string(p.pid) + ", killed with its group)"
                       : "; predicted pid " + std::to_string(p.pid) + " (" + p.comm + ") instead";
            f.push_back({"OOMGUARD_PREDICTION_MATCHED", matched ? "1" : "0"});
            if (matched) f.push_back({"OOMGUARD_PREDICTION_MATCH", by_pid ? "pid" : "oom-group"});
            f.push_back({"OOMGUARD_PREDICTED_PID", std::to_string(p.pid)});
        }
    } else {
        msg += " (not after an oomguard trigger)";
    }
    f.push_back({"OOMGUARD_AFTER_TRIGGER", i.after_trigger ? "1" : "0"});
    host_.log().log(Event::Victim, LOG_WARNING, msg, f);
}

}  // namespace oomguard
