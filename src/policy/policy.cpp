#include "policy/policy.hpp"

#include <algorithm>

namespace oomguard {

const char* to_string(MemState s) {
    switch (s) {
        case MemState::Ok: return "ok";
        case MemState::Warning: return "warning";
        case MemState::Critical: return "critical";
    }
    return "?";
}

PolicySettings PolicySettings::from(const Config& c) {
    PolicySettings s;
    s.min_available = c.memory.min_available;
    s.warn_available = c.memory.warn_available;
    s.recover_available = c.memory.recover_available;
    s.repeat_after = c.action.repeat_after;
    s.min_interval = c.poll.min_interval;
    s.max_interval = c.poll.max_interval;
    s.fill_rate = c.poll.fill_rate;
    return s;
}

Levels Policy::levels(uint64_t mem_total) const {
    Levels l;
    l.min = s_.min_available.resolve(mem_total);
    l.warn = s_.warn_available ? s_.warn_available->resolve(mem_total) : 0;
    if (l.warn <= l.min) l.warn = 0;  // a percentage that resolves below min: no warning level
    uint64_t r = s_.recover_available ? s_.recover_available->resolve(mem_total)
                 : l.warn            ? l.warn
                                     : 2 * l.min;
    // Never let the episode end at or below the trigger level, nor below the warning level.
    if (r <= l.min) r = l.min + std::max<uint64_t>(l.min / 2, 1ull << 20);
    l.recover = std::max(r, l.warn);
    return l;
}

Decision Policy::decide_levels(const MemSample& sample, Duration now) {
    Decision d;
    d.levels = levels(sample.mem_total);
    const Levels& l = d.levels;
    const uint64_t avail = sample.mem_available;
    const bool below_min = avail < l.min;
    const bool below_warn = l.warn != 0 && avail < l.warn;

    if (in_episode_ && avail >= l.recover) {
        d.episode_ended = true;
        d.episode_had_trigger = triggered_;
        d.episode = episode_;
        d.episode_length = now - episode_start_;
        in_episode_ = warned_ = triggered_ = false;
        retry_pending_ = false;
        failures_ = 0;
    }

    if (!in_episode_ && (below_min || below_warn)) {
        in_episode_ = true;
        ++episode_;
        episode_start_ = now;
    }

    if (in_episode_) {
        d.episode = episode_;
        if (below_min) {
            const bool retry_wait = retry_pending_ && now < retry_due_;
            if (!retry_wait && (!triggered_ || now - last_trigger_ >= s_.repeat_after)) {
                proposed_ = true;
                prev_triggered_ = triggered_;
                prev_last_trigger_ = last_trigger_;
                d.trigger = true;
                d.repeat = triggered_;
                triggered_ = true;
                last_trigger_ = now;
            }
            warned_ = true;  // the trigger entry supersedes the warning
        } else if (below_warn && !warned_) {
            d.warn = true;
            warned_ = true;
        }
    }

    d.state = below_min ? MemState::Critical
              : (below_warn || in_episode_) ? MemState::Warning
                                            : MemState::Ok;

    if (below_min) {
        // Below the threshold: poll to catch the recovery and the repeat in time.
        Duration until_repeat = s_.repeat_after - (now - last_trigger_);
        d.next_poll = std::clamp<Duration>(until_repeat, s_.min_interval,
                                           std::min<Duration>(s_.max_interval,
                                                              std::chrono::milliseconds(100)));
    } else {
        // Headroom / fastest plausible fill rate: we look again before memory could
        // have crossed the threshold.
        double secs = static_cast<double>(avail - l.min) / static_cast<double>(s_.fill_rate);
        Duration next(static_cast<int64_t>(secs * 1e9));
        d.next_poll = std::clamp<Duration>(next, s_.min_interval, s_.max_interval);
    }
    return d;
}

Decision Policy::decide(const MemSample& sample, Duration now) {
    Decision d = decide_levels(sample, now);
    schedule_retry(d, now);
    return d;
}

// A pending retry wakes the loop when it is due, whatever the interval says.
void Policy::schedule_retry(Decision& d, Duration now) const {
    if (!retry_pending_ || !in_episode_) return;
    d.next_poll = std::min(d.next_poll, std::max<Duration>(retry_due_ - now, Duration{0}));
}

Duration Policy::action_result(bool ok, Duration now) {
    if (!proposed_) return Duration::max();
    proposed_ = false;
    if (ok) {
        failures_ = 0;
        retry_pending_ = false;
        return Duration::max();
    }
    // Not triggered after all: the repeat_after clock keeps its last success.
    triggered_ = prev_triggered_;
    last_trigger_ = prev_last_trigger_;
    Duration backoff = kRetryFirst;
    for (unsigned i = 0; i < failures_ && backoff < kRetryMax; ++i) backoff *= 2;
    backoff = std::min(backoff, kRetryMax);
    ++failures_;
    retry_pending_ = true;
    retry_due_ = now + backoff;
    return backoff;
}

}  // namespace oomguard
