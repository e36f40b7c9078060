// Config -> PolicySettings: the policy stays a pure function of its own
// settings (it knows nothing of TOML or Config); this mapping is the wiring's.
#pragma once

#include "config/config.hpp"
#include "policy/policy.hpp"

namespace oomguard {

PolicySettings policy_settings(const Config& c);

}  // namespace oomguard
