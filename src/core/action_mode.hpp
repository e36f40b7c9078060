// What a trigger does ([action] mode): read by the config, the loop and the
// adapters that report it.
#pragma once

namespace oomguard {

enum class ActionMode { Sysrq, DryRun, KillCgroup };

const char* to_string(ActionMode m);

}  // namespace oomguard
