// Extra work around the trigger: the kill-cgroup action instead of sysrq, and
// naming the heaviest cgroup after it. Set by the wiring (the cgroup code).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/action_result.hpp"
#include "core/heaviest_source.hpp"
#include "core/log.hpp"

namespace oomguard {

struct Config;

class TriggerHook {
public:
    virtual ~TriggerHook() = default;
    // Called after the action (never before the sysrq write): journal fields and
    // message text about the heaviest cgroup, from the ranking already held.
    virtual void describe(std::string& /*message*/, std::vector<LogField>& /*fields*/) {}
    // kill-cgroup mode only, bounded by [kubernetes] scan_budget. NotHandled:
    // the daemon writes sysrq (fallback), `what` says why.
    virtual ActionResult act(const Config&, bool /*dry_run*/) { return {}; }
    // The cgroup the current trigger named (what describe() logged), for the
    // TriggerReport; nullopt when unknown. Called after describe() and the
    // trigger's journal entry, for an action that happened (or a dry-run).
    virtual std::optional<HeaviestRow> target() { return std::nullopt; }
};

}  // namespace oomguard
