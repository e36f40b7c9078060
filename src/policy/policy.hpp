// Policy: a pure function of samples, time and settings. No I/O, so it is
// tested with a fake clock.
#pragma once

#include <cstdint>

#include "config/config.hpp"
#include "sensors/meminfo.hpp"
#include "util/units.hpp"

namespace oomguard {

enum class MemState { Ok, Warning, Critical };
const char* to_string(MemState s);

struct PolicySettings {
    SizeOrPercent min_available;
    std::optional<SizeOrPercent> warn_available;
    std::optional<SizeOrPercent> recover_available;
    Duration repeat_after = std::chrono::seconds(1);
    Duration min_interval = std::chrono::milliseconds(1);
    Duration max_interval = std::chrono::seconds(2);
    uint64_t fill_rate = 4ull << 30;

    static PolicySettings from(const Config& c);
};

// Levels resolved against MemTotal, in bytes.
struct Levels {
    uint64_t min = 0;
    uint64_t warn = 0;     // 0: no warning level
    uint64_t recover = 0;  // an episode ends at or above this (never below warn)
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

class Policy {
public:
    explicit Policy(const PolicySettings& s) : s_(s) {}
    // New settings keep the episode state (a reload mid-episode does not re-trigger).
    void reconfigure(const PolicySettings& s) { s_ = s; }
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

private:
    PolicySettings s_;
    bool in_episode_ = false;
    bool warned_ = false;
    bool triggered_ = false;
    uint64_t episode_ = 0;
    Duration episode_start_{0};
    Duration last_trigger_{0};
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
