// Other userspace OOM killers on the node (earlyoom, systemd-oomd, nohang):
// found by a scan of <proc>/*/comm at start, so that the journal says up front
// that two guards may act on one episode.
#pragma once

#include <string>
#include <vector>

#include "service/journal.hpp"

namespace oomguard {

struct OtherOomDaemon {
    std::string name;  // "earlyoom"
    int pid = 0;
};

// The known OOM daemons running under proc_root (the host's /proc, or
// /host/proc in a DaemonSet), one per name, lowest pid. Reads at most
// kMaxProcesses entries.
std::vector<OtherOomDaemon> find_other_oom_daemons(const std::string& proc_root);

// What happens with both, for the journal entry.
std::string coexistence_advice(const std::string& name);

// One Event::OtherOomDaemon warning per daemon found.
void warn_other_oom_daemons(Journal& journal, const std::string& proc_root);

}  // namespace oomguard
