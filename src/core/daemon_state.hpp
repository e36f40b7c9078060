// What the daemon knows: one owner (the Daemon's loop writes it), and every
// adapter (STATUS, D-Bus, metrics, Dump) reads it as const DaemonState&.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/action_mode.hpp"
#include "core/mem_sample.hpp"
#include "core/mem_state.hpp"
#include "core/oom_kill.hpp"
#include "core/prediction.hpp"

namespace oomguard {

struct DaemonState {
    MemSample sample;
    Levels levels;
    MemState state = MemState::Ok;
    ActionMode mode = ActionMode::Sysrq;
    bool dry_run = false;
    uint64_t triggers_total = 0;  // Acted or DryRun
    uint64_t trigger_failures_total = 0;
    uint64_t warnings_total = 0;
    uint64_t episodes_total = 0;
    uint64_t memcg_oom_kills_total = 0;  // memcg OOM kills (pods hitting their limits), from kmsg
    uint64_t oom_kills_total = 0;        // every OOM kill on kmsg (memcg and node-wide)
    uint64_t oom_requests_ignored_total = 0;  // "OOM request ignored": sysrq found no eligible task
    uint64_t cgroup_kills_total = 0;          // kill-cgroup actions that killed a container
    OomKill last_oom_kill;                    // pid -1: none seen yet
    PredictedTask prediction;                 // the kernel's likely victim now (pid 0: none)
    PredictedTask trigger_prediction;         // the prediction at the last written trigger
    uint64_t predictions_matched_total = 0;   // trigger victims the prediction named
    uint64_t predictions_missed_total = 0;    // trigger victims it did not
    AuditCounts audit;                        // the node audit's active findings, by check
    uint64_t last_trigger_realtime_usec = 0;  // 0: never
    uint64_t samples_total = 0;
    uint64_t sample_errors_total = 0;
    std::string last_error;
    std::string config_path;
    // Every field: the bus publisher tells an unchanged state by it.
    bool operator==(const DaemonState&) const = default;
};

}  // namespace oomguard
