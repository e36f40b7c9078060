// One reading of /proc/meminfo: what the sensors produce, the policy decides on
// and the state reports. Plain data, so every layer can carry it.
#pragma once

#include <cstdint>

namespace oomguard {

struct MemSample {
    uint64_t mem_total = 0;      // bytes
    uint64_t mem_available = 0;  // bytes
    uint64_t swap_free = 0;      // bytes (0 when absent)
    bool operator==(const MemSample&) const = default;
};

}  // namespace oomguard
