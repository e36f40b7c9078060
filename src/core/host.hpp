// What a component (the cgroup code, the D-Bus publisher) sees of the daemon:
// the state it owns and the config, read-only; the log; the few facts a
// component reports back, which the daemon counts and passes to the sinks; and
// requests the loop performs at its own level (never inside a callback of the
// requester's own: the publisher calls them from its LoopSource::dispatch).
#pragma once

#include "core/daemon_state.hpp"
#include "core/log.hpp"
#include "core/oom_kill.hpp"
#include "util/result.hpp"

namespace oomguard {

struct Config;

class Host {
public:
    virtual ~Host() = default;
    virtual const DaemonState& state() const = 0;
    virtual const Config& config() const = 0;
    virtual Log& log() = 0;

    // Reports from the cgroup code (kmsg reader, kill-cgroup): counted in the
    // state, then passed to the sinks.
    virtual void record_oom_kill(const OomKill& kill) = 0;
    virtual void record_oom_request_ignored() = 0;
    virtual void record_cgroup_kill() = 0;
    // The background predictor's latest result, and whether a trigger's victim
    // was the one predicted at the trigger (issue 14).
    virtual void record_prediction(const PredictedTask& p) = 0;
    virtual void record_prediction_result(bool matched) = 0;
    virtual void record_audit(const AuditCounts& counts) = 0;

    // Reload from the config path; on error the old config stays, and the
    // Error (also in state().last_error) says why. From a LoopSource's
    // dispatch only, like SIGHUP.
    virtual Status reload() = 0;
};

}  // namespace oomguard
