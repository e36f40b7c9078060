// Policy: a pure function of samples, time and settings. No I/O, so it is
// tested with a fake clock.
#pragma once

#include <cstdint>
#include <optional>

#include "core/defaults.hpp"
#include "core/mem_sample.hpp"
#include "core/mem_state.hpp"
#include "util/units.hpp"

namespace oomguard {

struct PolicySettings {
    SizeOrPercent min_available;
    std::optional<SizeOrPercent> warn_available;
    std::optional<SizeOrPercent> recover_available;
    Duration repeat_after = defaults::kRepeatAfter;
    Duration min_interval = defaults::kMinInterval;
    // Shortest interval while memory is steady (see poll_interval()).
    Duration idle_interval = defaults::kIdleInterval;
    Duration max_interval = defaults::kMaxInterval;
    uint64_t fill_rate = defaults::kFillRate;  // floor of the assumed fill rate, bytes/s
};

struct Decision {
    MemState state = MemState::Ok;
    bool trigger = false;        // act now
    bool repeat = false;         // the trigger is a repeat within the episode
    bool warn = false;           // first warning of this episode
    bool episode_ended = false;  // back above the recovery level
    bool episode_had_trigger = false;
    uint64_t episode = 0;        // current (or just ended) episode number, from 1
    Duration episode_length{0};  // set when episode_ended
    Duration next_poll{0};
    Levels levels;
};

// How fast MemAvailable is falling, from recent samples: the fastest drop seen
// between two samples at least kMinSpan apart, decaying with a half-life of
// kHalfLife. Pure: the caller passes the time.
class FillRateEstimator {
public:
    static constexpr Duration kMinSpan = std::chrono::milliseconds(1);
    static constexpr Duration kHalfLife = std::chrono::seconds(1);
    void update(uint64_t mem_available, Duration now);
    double rate() const { return rate_; }  // bytes/s, >= 0

private:
    bool have_ref_ = false;
    uint64_t ref_available_ = 0;
    Duration ref_time_{0};
    double rate_ = 0.0;
};

// The poll schedule above the threshold: sleep no longer than memory falling at
// max(fill_rate, kRateSafety x estimated rate) needs to use up the headroom; no
// shorter than idle_interval while memory is steady (kSteadyFactor x the estimated
// rate would use up at most the headroom within idle_interval); always within
// [min_interval, max_interval]. kSteadyFactor is large because the first sample of
// a fall underestimates it: the fall may have begun just before that sample.
inline constexpr double kRateSafety = 2.0;
inline constexpr double kSteadyFactor = 8.0;
Duration poll_interval(const PolicySettings& s, uint64_t headroom, double est_rate);
// Below the threshold: often enough to see the recovery and the repeat on time.
Duration repeat_interval(const PolicySettings& s, Duration until_repeat);
// clamp for intervals that never sees inverted bounds: lo wins over hi.
Duration clamp_interval(Duration v, Duration lo, Duration hi);

class Policy {
public:
    explicit Policy(const PolicySettings& s) : s_(s) {}
    // New settings keep the episode state (a reload mid-episode does not re-trigger).
    void reconfigure(const PolicySettings& s) { s_ = s; }
    // The next decision below the threshold acts at once, not after repeat_after:
    // the episode's last action was a dry-run and the daemon now acts for real.
    void make_due() {
        if (in_episode_ && triggered_) due_now_ = true;
    }
    const PolicySettings& settings() const { return s_; }

    Levels levels(uint64_t mem_total) const;
    // Proposes: d.trigger asks the caller to act, then report action_result().
    Decision decide(const MemSample& sample, Duration now);

    // The result of the action decide() proposed. A success starts the
    // repeat_after clock; a failure leaves the episode untriggered and asks for a
    // retry after a short backoff (kRetryFirst doubling to kRetryMax). Returns the
    // delay until that retry (Duration::max() after a success), for the next poll.
    Duration action_result(bool ok, Duration now);
    static constexpr Duration kRetryFirst = std::chrono::milliseconds(10);
    static constexpr Duration kRetryMax = std::chrono::seconds(1);
    unsigned consecutive_failures() const { return failures_; }

    bool in_episode() const { return in_episode_; }
    double estimated_fill_rate() const { return fill_.rate(); }

private:
    PolicySettings s_;
    bool in_episode_ = false;
    bool warned_ = false;
    bool triggered_ = false;
    bool due_now_ = false;  // make_due()
    bool prev_due_now_ = false;
    uint64_t episode_ = 0;
    Duration episode_start_{0};
    Duration last_trigger_{0};
    FillRateEstimator fill_;
    // Retry of a failed action: the state before the proposal, restored on failure.
    bool proposed_ = false;
    bool prev_triggered_ = false;
    Duration prev_last_trigger_{0};
    unsigned failures_ = 0;
    bool retry_pending_ = false;
    Duration retry_due_{0};

    Decision decide_levels(const MemSample& sample, Duration now);
    void schedule_retry(Decision& d, Duration now) const;
};

}  // namespace oomguard
