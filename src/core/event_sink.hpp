// Observers of what happened (D-Bus signals, metrics, the OOM reporter). Called
// by the loop after the effect; each event carries its data, the state is the
// daemon's (read it, never keep a copy of it).
#pragma once

#include "core/daemon_state.hpp"
#include "core/oom_kill.hpp"
#include "core/trigger_report.hpp"
#include "util/units.hpp"

namespace oomguard {

struct Config;

class EventSink {
public:
    virtual ~EventSink() = default;
    virtual void on_warning(const DaemonState&) {}
    // Every attempt, t.ok() or not (then nothing was done, t.what says why).
    virtual void on_trigger(const DaemonState&, const TriggerReport& /*t*/) {}
    virtual void on_recovered(const DaemonState&, Duration /*episode*/) {}
    virtual void on_state(const DaemonState&) {}  // at most ~1/s, and on state changes
    virtual void on_config(const DaemonState&, const Config&) {}
    virtual void on_oom_kill(const DaemonState&, const OomKill& /*kill*/) {}  // already counted
};

}  // namespace oomguard
