// The one place that builds oomguard's components around a Daemon and
// registers them with it (trigger hook, sinks, loop sources). main.cpp and the
// perf tests use it, so that what is tested is what runs. Components do not
// register themselves. The D-Bus side is main.cpp's (the only app file that
// includes src/bus): it builds the publisher and hands it to add_adapter().
//
// Where a new piece goes: a sensor or an action is the Daemon's (src/sensors,
// src/actions); anything that reacts to events is an EventSink, anything with
// an fd or a timeout a LoopSource (src/core), built and registered here.
#pragma once

#include "app/victim_prediction.hpp"
#include "cgroup/cgroup_heaviest_source.hpp"
#include "cgroup/cgroup_targeting.hpp"
#include "cgroup/oom_reporter.hpp"
#include "daemon.hpp"
#include "core/event_sink.hpp"
#include "core/loop_source.hpp"
#include "service/metrics.hpp"

namespace oomguard {

// Everything but the Daemon and the D-Bus thread. Build it after Daemon::init()
// (the metrics take the loaded config) and keep it alive while the daemon runs.
struct Components {
    explicit Components(Daemon& daemon);
    Components(const Components&) = delete;
    Components& operator=(const Components&) = delete;

    // Heaviest pod before each trigger, kill-cgroup, kernel OOM reports after it.
    CgroupTargeting targeting;
    OomReporter oom_reporter;
    CgroupHeaviestSource heaviest;
    MetricsWriter metrics;
    // Who the kernel would kill, and the node audit (a thread of its own).
    VictimPrediction prediction;

    // An adapter that reads what the components above have named (the D-Bus
    // publisher): registered after them, so it hears of an event last.
    void add_adapter(LoopSource& source, EventSink& sink);

private:
    Daemon& daemon_;
};

}  // namespace oomguard
