// The policy's verdict on memory, as the state and every adapter report it.
#pragma once

#include <cstdint>

namespace oomguard {

enum class MemState { Ok, Warning, Critical };

const char* to_string(MemState s);

// Levels resolved against MemTotal, in bytes.
struct Levels {
    uint64_t min = 0;
    uint64_t warn = 0;     // 0: no warning level
    uint64_t recover = 0;  // an episode ends at or above this (never below warn)
    bool operator==(const Levels&) const = default;
};

}  // namespace oomguard
