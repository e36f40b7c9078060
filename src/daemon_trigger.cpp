// The trigger path of the daemon's loop: the action, then its journal entry and
// the sinks (act), the start/reload trigger check, and the cgroup code's reports.
#include <syslog.h>

#include "app/prediction_fields.hpp"
#include "core/clock.hpp"
#include "daemon.hpp"

namespace oomguard {
namespace {

std::string u64(uint64_t v) { return std::to_string(v); }

// last_error prefixes, so that a recovery clears only its own error.
constexpr std::string_view kTriggerFailed = "trigger failed: ";
constexpr std::string_view kTriggerUnusable = "trigger path unusable: ";

}  // namespace

bool Daemon::act(const MemSample& s, const Decision& d) {
    // Failed attempts are retried within the episode: count the episode once.
    if (d.episode != counted_episode_) {
        counted_episode_ = d.episode;
        ++state_.episodes_total;
    }
    // The action comes first. In sysrq mode nothing runs before the write (no
    // ranking, no allocation); kill-cgroup needs a ranking, bounded by scan_budget.
    // Logging waits too: it formats and allocates, and journald may be the
    // process the pressure stalls (the entry is a non-blocking datagram, on
    // stderr when journald's socket is full).
    ActionResult r;
    if (hook_ && config_.action.mode == ActionMode::KillCgroup)
        r = hook_->act(config_, state_.dry_run);
    const bool handled = r.outcome != TriggerOutcome::NotHandled;
    Status st = ok_status();
    if (!handled) {
        if (state_.dry_run) {
            r.outcome = TriggerOutcome::DryRun;
        } else {
            st = trigger_.fire();
            r.outcome = st ? TriggerOutcome::Acted : TriggerOutcome::Failed;
        }
        // kill-cgroup says why it fell back to sysrq. Said for an operator: the
        // kernel picks the task, by oom_score_adj.
        const std::string via = config_.action.sysrq_trigger == defaults::kSysrqTrigger
                                    ? std::string("(sysrq f)")
                                    : "(sysrq f via " + config_.action.sysrq_trigger + ")";
        const char* task = d.repeat ? "one more task " : "one task ";
        r.what += state_.dry_run
                      ? "dry-run: would ask the kernel OOM killer to kill " + (task + via)
                      : "asked the kernel OOM killer to kill " + (task + via);
    }
    const bool ok = r.outcome != TriggerOutcome::Failed;

    // Named after the action, from the ranking the cgroup code already holds.
    std::string extra;
    std::vector<LogField> hook_fields;
    // A run of retried failures names it once, not every retry.
    if (hook_ && (ok || policy_->consecutive_failures() == 0)) hook_->describe(extra, hook_fields);

    std::string msg = "MemAvailable " + format_bytes(s.mem_available) +
                      (d.repeat ? " still below " : " below ") + format_bytes(d.levels.min) + ": ";
    std::vector<LogField> fields = {
        {"OOMGUARD_MEM_AVAILABLE_BYTES", u64(s.mem_available)},
        {"OOMGUARD_MEM_TOTAL_BYTES", u64(s.mem_total)},
        {"OOMGUARD_THRESHOLD_BYTES", u64(d.levels.min)},
        {"OOMGUARD_EPISODE", u64(d.episode)},
        {"OOMGUARD_REPEAT", d.repeat ? "1" : "0"},
        {"OOMGUARD_DRY_RUN", state_.dry_run ? "1" : "0"},
    };
    for (auto& f : hook_fields) fields.push_back(std::move(f));
    // Who the kernel will likely kill, from the background predictor (issue 14);
    // the OOM reporter checks it against the victim.
    const Duration now = clock_.now();
    const bool fresh = prediction_fresh(state_.prediction, now);
    state_.trigger_prediction = fresh ? state_.prediction : PredictedTask{};
    std::string predicted;  // before the heaviest table, on the message's first line
    if (ok) append_prediction(state_.prediction, now, predicted, fields);
    // What was done, not the mode: a dry-run did nothing, a fallback wrote sysrq.
    const char* kind = state_.dry_run ? "dry-run" : handled ? "kill-cgroup" : "sysrq";
    fields.push_back({"OOMGUARD_ACTION", kind});
    fields.push_back({"OOMGUARD_MODE", to_string(config_.action.mode)});
    fields.push_back({"OOMGUARD_OUTCOME", to_string(r.outcome)});

    last_outcome_ = r.outcome;
    std::string err;  // why it failed
    if (ok) {
        journal_.log(Event::Trigger, LOG_WARNING, msg + r.what + predicted + extra, fields);
        ++state_.triggers_total;
        state_.last_trigger_realtime_usec = realtime_usec();
        if (state_.last_error.starts_with(kTriggerFailed) ||
            state_.last_error.starts_with(kTriggerUnusable))
            state_.last_error.clear();
    } else {
        // Nothing was done: a failure in every sink, retried soon by the policy.
        err = st ? r.what : st.error().message;
        ++state_.trigger_failures_total;
        state_.last_error = std::string(kTriggerFailed) + err;
        fields.push_back({"OOMGUARD_ERROR", err});
        if (!st) fields.push_back({"ERRNO", u64(static_cast<uint64_t>(st.error().code))});
        fields.push_back({"OOMGUARD_FAILURES", u64(policy_->consecutive_failures() + 1)});
        const std::string detail = st ? msg + r.what : err + " (" + msg + r.what + ")";
        journal_.log(Event::TriggerFailed, LOG_ERR, std::string(kTriggerFailed) + detail + extra,
                     fields);
    }
    TriggerReport t;
    t.outcome = r.outcome;
    t.kind = kind;
    t.what = ok ? r.what : err;
    t.mem_available = s.mem_available;
    t.episode = d.episode;
    t.repeat = d.repeat;
    if (ok && hook_) t.target = hook_->target();
    for (auto* k : sinks_) k->on_trigger(state_, t);
    return ok;
}

void Daemon::check_trigger() {
    // Found at start or reload, not at the first crossing. Never written here.
    Status st = trigger_.probe();
    if (st) return;
    const Error& e = st.error();
    if (e.code == ENXIO) {
        // A FIFO whose reader comes later is a supported (test) setup.
        journal_.log(Event::Info, LOG_WARNING,
                     "the trigger " + trigger_.path() +
                         " is a FIFO with no reader yet: a trigger fails until one opens it",
                     {{"OOMGUARD_TRIGGER", trigger_.path()}, {"ERRNO", u64(ENXIO)}});
        return;
    }
    state_.last_error = std::string(kTriggerUnusable) + e.message;
    journal_.log(Event::SensorError, LOG_WARNING,
                 "the trigger " + trigger_.path() + " cannot be opened for writing (" + e.message +
                     "): every trigger will fail until this is fixed" +
                     (state_.dry_run ? " (dry-run does not write it)" : ""),
                 {{"OOMGUARD_TRIGGER", trigger_.path()},
                  {"OOMGUARD_ERROR", e.message},
                  {"ERRNO", u64(static_cast<uint64_t>(e.code))}});
}

void Daemon::record_oom_kill(const OomKill& kill) {
    ++state_.oom_kills_total;
    if (kill.memcg) ++state_.memcg_oom_kills_total;
    state_.last_oom_kill = kill;
    for (auto* k : sinks_) k->on_oom_kill(state_, kill);
}

}  // namespace oomguard
