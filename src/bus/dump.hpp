// The text of Dump(): everything the daemon knows, for humans (like `oomctl dump`).
// Counters and the last victim come from the state, the one owner of them.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/daemon_state.hpp"
#include "core/heaviest_source.hpp"

namespace oomguard {

struct DumpInput {
    DumpInput(const DaemonState& s, const Config& c) : state(s), config(c) {}
    const DaemonState& state;
    const Config& config;
    bool heaviest_available = false;  // false: no cgroup source installed
    std::vector<HeaviestRow> heaviest;
    std::optional<HeaviestRow> last_trigger_target;
    std::string bus;  // the D-Bus link, e.g. "org.oomguard1 on unix:path=..."
};

std::string render_dump(const DumpInput& in);

// "2024-05-01 12:00:00.123 UTC" (local time zone), or "never" for 0.
std::string format_realtime_usec(uint64_t usec);

}  // namespace oomguard
