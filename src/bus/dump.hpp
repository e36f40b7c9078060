// The text of Dump(): everything the daemon knows, for humans (like `oomctl dump`).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/heaviest_source.hpp"
#include "bus/oom_victim.hpp"
#include "config/config.hpp"
#include "daemon.hpp"

namespace oomguard {

struct DumpInput {
    DumpInput(const DaemonState& s, const Config& c) : state(s), config(c) {}
    const DaemonState& state;
    const Config& config;
    bool heaviest_available = false;  // false: no cgroup source installed
    std::vector<HeaviestRow> heaviest;
    std::optional<HeaviestRow> last_trigger_target;
    std::optional<OomVictim> last_victim;
    uint64_t kernel_oom_kills = 0;
    std::string bus;  // the D-Bus link, e.g. "org.oomguard1 on unix:path=..."
};

std::string render_dump(const DumpInput& in);

// "2024-05-01 12:00:00.123 UTC" (local time zone), or "never" for 0.
std::string format_realtime_usec(uint64_t usec);

}  // namespace oomguard
