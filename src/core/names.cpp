// The names of the core enums and of a container, as the journal, D-Bus, Dump
// and the metrics show them.
#include "core/action_mode.hpp"
#include "core/action_result.hpp"
#include "core/mem_state.hpp"
#include "core/oom_kill.hpp"

namespace oomguard {

std::string container_label(std::string_view name, std::string_view id, std::string_view path) {
    if (!name.empty()) return std::string(name);
    if (!id.empty()) return std::string(id.substr(0, 12));
    const size_t slash = path.rfind('/');
    return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

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
