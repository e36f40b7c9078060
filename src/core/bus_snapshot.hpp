// What the D-Bus side serves, as published by the daemon thread: one owner per
// fact (DaemonState in the daemon), the bus only holds this copy of it. Events
// carry their own data, so no sink keeps state of its own.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/daemon_state.hpp"
#include "core/heaviest_source.hpp"
#include "core/oom_kill.hpp"

namespace oomguard {

struct Config;

struct BusSnapshot {
    // Copied on every publication. Its strings keep their capacity, so copying
    // an unchanged state does not allocate.
    DaemonState state;
    // Replaced only when they change (a trigger, a new ranking, a reload).
    std::optional<HeaviestRow> last_trigger_target;
    bool heaviest_available = false;  // a cgroup source is installed
    // The last ranking, heaviest first; shared, so that publishing and taking
    // a snapshot copy a pointer, not up to 1000 rows, under the lock.
    std::shared_ptr<const std::vector<HeaviestRow>> heaviest;
    std::shared_ptr<const Config> config;  // the effective config, for Dump
};

// A signal to emit, with everything it says.
struct BusEvent {
    enum class Kind { Warning, Triggered, Victim, Recovered };
    Kind kind = Kind::Warning;
    uint64_t available = 0;
    uint64_t value = 0;  // Warning: the warning level; Recovered: the episode in usec
    HeaviestRow target;  // Triggered: the cgroup named at the trigger
    std::string action;  // Triggered: "sysrq", "dry-run", "kill-cgroup"
    OomKill victim;      // Victim
};

}  // namespace oomguard
