#include "policy/policy.hpp"

#include <algorithm>
#include <cmath>

namespace oomguard {

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
    r = std::max(r, l.warn);
    // MemAvailable never reaches MemTotal, so a derived level there would never end
    // the episode: cap it halfway between min and MemTotal. (An explicit absolute
    // level at or above MemTotal is refused by check_against_mem_total.)
    if (mem_total > l.min && r >= mem_total) r = l.min + (mem_total - l.min) / 2;
    l.recover = r;
    return l;
}

Duration clamp_interval(Duration v, Duration lo, Duration hi) {
    if (hi < lo) hi = lo;
    return v < lo ? lo : (hi < v ? hi : v);
}

void FillRateEstimator::update(uint64_t avail, Duration now) {
    if (!have_ref_ || now < ref_time_) {
        have_ref_ = true;
        ref_available_ = avail;
        ref_time_ = now;
        return;
    }
    const Duration span = now - ref_time_;
    // Samples closer together (a PSI wakeup right after a timer one) would turn
    // MemAvailable's jitter into absurd rates: measure over a longer span.
    if (span < kMinSpan) return;
    const double secs = std::chrono::duration<double>(span).count();
    const double observed =
        avail < ref_available_ ? static_cast<double>(ref_available_ - avail) / secs : 0.0;
    const double decayed =
        rate_ * std::exp2(-secs / std::chrono::duration<double>(kHalfLife).count());
    rate_ = std::max(observed, decayed);
    ref_available_ = avail;
    ref_time_ = now;
}

Duration poll_interval(const PolicySettings& s, uint64_t headroom, double est_rate) {
    const double h = static_cast<double>(headroom);
    const double fill = std::max(static_cast<double>(s.fill_rate), kRateSafety * est_rate);
    double secs = h / fill;
    const double idle = std::chrono::duration<double>(s.idle_interval).count();
    if (kSteadyFactor * est_rate * idle <= h) secs = std::max(secs, idle);
    // Bounded before converting: a huge headroom must not overflow the int64 nanoseconds.
    secs = std::min(secs, std::chrono::duration<double>(s.max_interval).count());
    return clamp_interval(Duration(static_cast<int64_t>(secs * 1e9)), s.min_interval,
                          s.max_interval);
}

Duration repeat_interval(const PolicySettings& s, Duration until_repeat) {
    // At most 100 ms (to see the recovery), but never below min_interval, even when
    // min_interval is above 100 ms: clamp_interval lets lo win.
    const Duration cap = std::min<Duration>(s.max_interval, std::chrono::milliseconds(100));
    return clamp_interval(until_repeat, s.min_interval, cap);
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
        in_episode_ = warned_ = triggered_ = due_now_ = false;
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
            if (!retry_wait &&
                (!triggered_ || due_now_ || now - last_trigger_ >= s_.repeat_after)) {
                proposed_ = true;
                prev_triggered_ = triggered_;
                prev_due_now_ = due_now_;
                due_now_ = false;
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

    fill_.update(avail, now);
    d.next_poll = below_min ? repeat_interval(s_, s_.repeat_after - (now - last_trigger_))
                            : poll_interval(s_, avail - l.min, fill_.rate());
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
    due_now_ = prev_due_now_;
    Duration backoff = kRetryFirst;
    for (unsigned i = 0; i < failures_ && backoff < kRetryMax; ++i) backoff *= 2;
    backoff = std::min(backoff, kRetryMax);
    ++failures_;
    retry_pending_ = true;
    retry_due_ = now + backoff;
    return backoff;
}

}  // namespace oomguard
