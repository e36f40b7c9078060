// One trigger attempt, as the loop reports it to the sinks (EventSink::on_trigger):
// the event carries its data, so no sink reads it back from the state or keeps
// a copy. Valid for the duration of the call.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "core/action_result.hpp"
#include "core/heaviest_source.hpp"

namespace oomguard {

struct TriggerReport {
    TriggerOutcome outcome = TriggerOutcome::NotHandled;  // Acted, DryRun or Failed
    // What was done, not the mode: "sysrq" (written or failed), "kill-cgroup",
    // or "dry-run" (nothing written, whatever the mode).
    std::string_view kind;
    std::string_view what;  // what was done, or why it failed
    uint64_t mem_available = 0;
    uint64_t episode = 0;
    bool repeat = false;  // a repeat within the episode
    // The cgroup the trigger named (TriggerHook::target(): the container
    // kill-cgroup chose, else the heaviest): the Triggered signal's and
    // LastTriggerTarget's; a dry-run names what it would have hit. nullopt
    // when unknown or the action failed.
    std::optional<HeaviestRow> target;

    // The action happened (Acted or DryRun); false: nothing was done.
    bool ok() const {
        return outcome == TriggerOutcome::Acted || outcome == TriggerOutcome::DryRun;
    }
    // A written sysrq 'f': the kernel's next node-wide kill is ours.
    bool wrote_sysrq() const { return outcome == TriggerOutcome::Acted && kind == "sysrq"; }
};

}  // namespace oomguard
