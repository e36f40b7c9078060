// What an action did. NotHandled only comes from a TriggerHook (the loop then
// writes sysrq); the loop reports one of the other three to the sinks.
#pragma once

#include <string>

namespace oomguard {

enum class TriggerOutcome { NotHandled, Acted, DryRun, Failed };

const char* to_string(TriggerOutcome o);

struct ActionResult {
    TriggerOutcome outcome = TriggerOutcome::NotHandled;
    std::string what;  // what was done, or why it failed / fell back
};

}  // namespace oomguard
