#include "app/victim_prediction.hpp"

#include <poll.h>
#include <syslog.h>

#include <algorithm>

#include "cgroup/kmsg.hpp"
#include "cgroup/oom_reporter.hpp"
#include "config/config.hpp"

namespace oomguard {

VictimPrediction::VictimPrediction(Host& host, CgroupMonitor& monitor, const Clock& clock)
    : host_(host), monitor_(monitor), clock_(clock) {
    on_config(host_.state(), host_.config());
}

VictimPrediction::~VictimPrediction() {
    if (predictor_) predictor_->stop();
}

void VictimPrediction::on_config(const DaemonState& s, const Config& config) {
    if (!predictor_ || config.paths.proc != proc_root_) {
        if (predictor_) predictor_->stop();
        proc_root_ = config.paths.proc;
        predictor_ = std::make_unique<OomPredictor>(proc_root_, kScanEvery, kScanBudget, clock_);
        predictor_->set_notify_fd(wake_.fd());
        predictor_->start();
    }
    on_state(s);
    request_audit();  // at start and on every reload
}

void VictimPrediction::on_state(const DaemonState& s) {
    // Below the warning level, or, without one (the shipped config), below the
    // recovery level (2 x min_available by default): close enough that the
    // next trigger should find a fresh prediction; never on an idle node.
    const uint64_t near = s.levels.warn ? s.levels.warn : s.levels.recover;
    if (predictor_)
        predictor_->set_active(s.state != MemState::Ok || s.sample.mem_available < near);
}

void VictimPrediction::request_audit() {
    next_audit_ = clock_.now() + kAuditEvery;
    const CgroupHierarchy& h = monitor_.hierarchy();
    const CgroupMonitor::Allocatable a = monitor_.allocatable();
    const std::string kubepods = a.kubernetes ? h.memory_root + a.path : std::string();
    const bool v2 = h.version == CgroupVersion::V2;
    const uint64_t mem_total = host_.state().sample.mem_total;
    predictor_->post([this, proc = proc_root_, kubepods, v2, mem_total] {
        auto findings = audit_node(gather_audit_facts(proc, kubepods, v2, mem_total));
        std::lock_guard<std::mutex> g(audit_mu_);
        audit_result_ = std::move(findings);
    });
}

LoopSource::Spec VictimPrediction::poll_spec() {
    const Duration left = next_audit_ - clock_.now();
    return {wake_.fd(), POLLIN, std::max<int64_t>(0, left.count())};
}

void VictimPrediction::dispatch(short revents) {
    if (revents & POLLIN) {
        wake_.drain();
        take_prediction();
        take_audit();
    }
    if (clock_.now() >= next_audit_) request_audit();
}

void VictimPrediction::take_prediction() {
    auto p = predictor_->try_latest();
    if (!p || p->at == taken_at_) return;
    taken_at_ = p->at;
    // A failing scan is logged once, not once a second; again when it changes.
    const std::string why = p->error ? p->error->message : std::string();
    if (why != scan_error_) {
        if (!why.empty())
            host_.log().log(Event::SensorError, LOG_WARNING,
                            "victim prediction: " + why + " (the trigger names no likely victim)",
                            {{"OOMGUARD_ERROR", why}});
        scan_error_ = why;
    }
    PredictedTask t;
    t.at = p->at;
    t.tasks = p->stats.tasks;
    if (p->victim.pid > 0) {
        t.pid = p->victim.pid;
        t.comm = p->victim.comm;
        t.oom_score = p->victim.oom_score;
        t.tied = p->victim.tied;
        // Named as a victim would be: the same pod, container and QoS rules.
        KernelOomEvent e;
        e.task_memcg = p->victim.cgroup;
        t.cgroup = attribute_oom_kill(e, monitor_).cgroup;
    }
    host_.record_prediction(t);
}

void VictimPrediction::take_audit() {
    std::optional<std::vector<AuditFinding>> r;
    {
        std::lock_guard<std::mutex> g(audit_mu_);
        r.swap(audit_result_);
    }
    if (!r) return;
    for (const AuditFinding& f : audit_memory_.fresh(*r)) {
        // The allocatable findings are the allocatable check's own entry (NoAllocatable).
        if (f.kind == AuditKind::NoAllocatable || f.kind == AuditKind::AllocatableIsAll) continue;
        host_.log().log(Event::AuditFinding, LOG_WARNING,
                        "node audit: " + f.message + "; fix: " + f.fix,
                        {{"OOMGUARD_AUDIT_CHECK", to_string(f.kind)},
                         {"OOMGUARD_AUDIT_SUBJECT", f.subject},
                         {"OOMGUARD_AUDIT_FIX", f.fix}});
    }
    AuditCounts counts;
    for (const AuditFinding& f : *r) ++counts.findings[static_cast<size_t>(f.kind)];
    host_.record_audit(counts);
}

}  // namespace oomguard
