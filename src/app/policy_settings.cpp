#include "app/policy_settings.hpp"

namespace oomguard {

PolicySettings policy_settings(const Config& c) {
    PolicySettings s;
    s.min_available = c.memory.min_available;
    s.warn_available = c.memory.warn_available;
    s.recover_available = c.memory.recover_available;
    s.repeat_after = c.action.repeat_after;
    s.min_interval = c.poll.min_interval;
    s.max_interval = c.poll.max_interval;
    // Unset: the default, moved inside [min_interval, max_interval] (an explicit
    // value outside them is a config error).
    s.idle_interval = c.poll.idle_interval.value_or(clamp_interval(
        Config::Poll::kDefaultIdleInterval, c.poll.min_interval, c.poll.max_interval));
    s.fill_rate = c.poll.fill_rate;
    return s;
}

}  // namespace oomguard
