// The D-Bus properties that PropertiesChanged announces, with the DaemonState
// fields each one reads: one table for both halves. The bus thread announces
// what differs from the state it last announced (bus_announce.cpp); the
// publisher wakes the bus thread only when one of them changed
// (bus_publisher.cpp). LastTriggerTarget is not in the state: it comes with a
// changed TriggerCount, and the bus thread compares it itself.
#pragma once

#include <span>

#include "core/daemon_state.hpp"

namespace oomguard {

struct AnnouncedProperty {
    const char* name;
    bool (*differs)(const DaemonState& a, const DaemonState& b);
    // MemAvailable, MemTotal: announced at most once per interval.
    bool memory = false;
};

std::span<const AnnouncedProperty> announced_properties();

// Whether any announced property differs between a and b. Allocation-free.
bool announced_differ(const DaemonState& a, const DaemonState& b);

}  // namespace oomguard
