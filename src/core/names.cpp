// The names of the core enums, as the journal, D-Bus, Dump and the metrics show them.
#include "core/action_mode.hpp"
#include "core/action_result.hpp"
#include "core/mem_state.hpp"

namespace oomguard {

const char* to_string(MemState s) {
    switch (s) {
        case MemState::Ok:
            return "ok";
        case MemState::Warning:
            return "warning";
        case MemState::Critical:
            return "critical";
    }
    return "?";
}

const char* to_string(ActionMode m) {
    switch (m) {
        case ActionMode::Sysrq:
            return "sysrq";
        case ActionMode::DryRun:
            return "dry-run";
        case ActionMode::KillCgroup:
            return "kill-cgroup";
    }
    return "?";
}

const char* to_string(TriggerOutcome o) {
    switch (o) {
        case TriggerOutcome::NotHandled:
            return "not-handled";
        case TriggerOutcome::Acted:
            return "acted";
        case TriggerOutcome::DryRun:
            return "dry-run";
        case TriggerOutcome::Failed:
            return "failed";
    }
    return "?";
}

}  // namespace oomguard
