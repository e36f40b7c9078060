// The one place that builds oomguard's components around a Daemon and
// registers them with it (trigger hook, sinks, loop sources). main.cpp and the
// perf tests use it, so that what is tested is what runs. Components do not
// register themselves.
//
// Where a new piece goes: a sensor or an action is the Daemon's (src/sensors,
// src/actions); anything that reacts to events is an EventSink, anything with
// an fd or a timeout a LoopSource (src/core), built and registered here.
#pragma once

#include "app/victim_prediction.hpp"
#include "bus/bus_channel.hpp"
#include "bus/bus_publisher.hpp"
#include "cgroup/cgroup_heaviest_source.hpp"
#include "cgroup/cgroup_targeting.hpp"
#include "cgroup/oom_reporter.hpp"
#include "daemon.hpp"
#include "service/metrics.hpp"

namespace oomguard {

struct WiringOptions {
    // The D-Bus publisher on the loop (the D-Bus thread itself is started by
    // main.cpp: it is the only sd-bus code, see src/bus/bus_thread.hpp).
    bool bus = true;
};

// Everything but the Daemon and the D-Bus thread. Build it after Daemon::init()
// (the metrics take the loaded config) and keep it alive while the daemon runs.
struct Components {
    Components(Daemon& daemon, WiringOptions options);
    Components(const Components&) = delete;
    Components& operator=(const Components&) = delete;

    // Heaviest pod before each trigger, kill-cgroup, kernel OOM reports after it.
    CgroupTargeting targeting;
    OomReporter oom_reporter;
    CgroupHeaviestSource heaviest;
    MetricsWriter metrics;
    // Who the kernel would kill, and the node audit (a thread of its own).
    VictimPrediction prediction;
    // The daemon thread's half of the D-Bus side.
    BusChannel bus_channel;
    BusPublisher bus_publisher;
};

}  // namespace oomguard
