// The policy tests' settings and samples: a 500 MiB threshold on a 16 GiB node,
// shared by test_policy.cpp and test_poll_schedule.cpp (pure, no clock but the test's).
#pragma once

#include <chrono>
#include <cstdint>

#include "policy/policy.hpp"
#include "support/files.hpp"

namespace oomguard::test::policy_rig {

using oomguard::test::MiB;

inline PolicySettings settings() {
    PolicySettings s;
    s.min_available = SizeOrPercent{false, 500 * MiB, 0};
    s.repeat_after = std::chrono::seconds(1);
    s.min_interval = std::chrono::milliseconds(1);
    s.max_interval = std::chrono::seconds(1);
    s.fill_rate = 4ull << 30;
    return s;
}

inline MemSample mem(uint64_t avail_mib, uint64_t total_mib = 16384) {
    return MemSample{total_mib * MiB, avail_mib * MiB, 0};
}

}  // namespace oomguard::test::policy_rig
