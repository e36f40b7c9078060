// Policy with a fake clock: time is whatever the test passes in.
#include <gtest/gtest.h>

#include "policy/policy.hpp"
#include "policy/wake.hpp"

using namespace oomguard;
using namespace std::chrono_literals;

namespace {

constexpr uint64_t MiB = 1ull << 20;

PolicySettings settings() {
    PolicySettings s;
    s.min_available = SizeOrPercent{false, 500 * MiB, 0};
    s.repeat_after = 1s;
    s.min_interval = 1ms;
    s.max_interval = 1s;
    s.fill_rate = 4ull << 30;
    return s;
}

MemSample mem(uint64_t avail_mib, uint64_t total_mib = 16384) {
    return MemSample{total_mib * MiB, avail_mib * MiB, 0};
}

}  // namespace

TEST(Policy, NoTriggerAboveThreshold) {
    Policy p(settings());
    Duration t = 0s;
    for (uint64_t m : {8000, 4000, 1000, 600, 501, 500}) {
        Decision d = p.decide(mem(m), t += 100ms);
        EXPECT_FALSE(d.trigger) << m;
        EXPECT_EQ(d.state, MemState::Ok);
    }
    EXPECT_FALSE(p.in_episode());
}

TEST(Policy, ExactlyOneTriggerAtCrossing) {
    Policy p(settings());
    EXPECT_FALSE(p.decide(mem(600), 0ms).trigger);
    Decision d = p.decide(mem(499), 10ms);
    EXPECT_TRUE(d.trigger);
    EXPECT_FALSE(d.repeat);
    EXPECT_EQ(d.episode, 1u);
    EXPECT_EQ(d.state, MemState::Critical);
    int more = 0;
    for (Duration t = 11ms; t < 1000ms; t += 7ms) more += p.decide(mem(450), t).trigger;
    EXPECT_EQ(more, 0);
}

TEST(Policy, RepeatsEveryRepeatAfterWhileLow) {
    Policy p(settings());
    int triggers = 0;
    std::vector<Duration> at;
    for (Duration t = 0ms; t <= 5000ms; t += 10ms) {
        Decision d = p.decide(mem(300), t);
        if (d.trigger) {
            ++triggers;
            at.push_back(t);
            EXPECT_EQ(d.repeat, triggers > 1);
            EXPECT_EQ(d.episode, 1u) << "repeats stay in the same episode";
        }
    }
    EXPECT_EQ(triggers, 6);  // 0, 1, 2, 3, 4, 5 s
    for (size_t i = 1; i < at.size(); ++i) EXPECT_EQ(at[i] - at[i - 1], 1s);
}

TEST(Policy, RearmsOnlyAfterRecovery) {
    PolicySettings s = settings();
    s.recover_available = SizeOrPercent{false, 800 * MiB, 0};
    Policy p(s);
    EXPECT_TRUE(p.decide(mem(400), 0ms).trigger);
    // Back above the threshold but below the recovery level: the episode goes on.
    Decision d = p.decide(mem(700), 100ms);
    EXPECT_FALSE(d.episode_ended);
    EXPECT_EQ(d.state, MemState::Warning);
    // Dipping again within repeat_after does not trigger (not re-armed)...
    EXPECT_FALSE(p.decide(mem(450), 200ms).trigger);
    // ...but once repeat_after passed it does, as a repeat in the same episode.
    d = p.decide(mem(450), 1100ms);
    EXPECT_TRUE(d.trigger);
    EXPECT_TRUE(d.repeat);
    // Recovery ends the episode and reports its length.
    d = p.decide(mem(900), 3000ms);
    EXPECT_TRUE(d.episode_ended);
    EXPECT_TRUE(d.episode_had_trigger);
    EXPECT_EQ(d.episode_length, 3000ms);
    EXPECT_EQ(d.state, MemState::Ok);
    // Re-armed: a new crossing triggers at once, in episode 2.
    d = p.decide(mem(499), 3010ms);
    EXPECT_TRUE(d.trigger);
    EXPECT_FALSE(d.repeat);
    EXPECT_EQ(d.episode, 2u);
}

TEST(Policy, DefaultRecoveryIsTwiceTheThreshold) {
    Policy p(settings());
    Levels l = p.levels(16384 * MiB);
    EXPECT_EQ(l.min, 500 * MiB);
    EXPECT_EQ(l.recover, 1000 * MiB);
    EXPECT_EQ(l.warn, 0u);
}

TEST(Policy, OneWarningPerEpisode) {
    PolicySettings s = settings();
    s.warn_available = SizeOrPercent{false, 1024 * MiB, 0};
    Policy p(s);
    EXPECT_EQ(p.levels(16384 * MiB).recover, 1024 * MiB) << "recovery defaults to the warning level";
    int warnings = 0;
    Duration t = 0ms;
    for (uint64_t m : {2000, 1000, 900, 1010, 950, 800}) warnings += p.decide(mem(m), t += 10ms).warn;
    EXPECT_EQ(warnings, 1);
    // Recover, then a second episode warns again.
    EXPECT_TRUE(p.decide(mem(1500), t += 10ms).episode_ended);
    EXPECT_TRUE(p.decide(mem(1000), t += 10ms).warn);
}

TEST(Policy, NoSeparateWarningWhenTheTriggerComesFirst) {
    PolicySettings s = settings();
    s.warn_available = SizeOrPercent{false, 1024 * MiB, 0};
    Policy p(s);
    Decision d = p.decide(mem(400), 0ms);
    EXPECT_TRUE(d.trigger);
    EXPECT_FALSE(d.warn);
    EXPECT_FALSE(p.decide(mem(900), 10ms).warn);
}

TEST(Policy, PercentLevelsResolveAgainstMemTotal) {
    PolicySettings s = settings();
    s.min_available = SizeOrPercent{true, 0, 5.0};
    Policy p(s);
    EXPECT_EQ(p.levels(10000 * MiB).min, 500 * MiB);
    EXPECT_FALSE(p.decide(mem(501, 10000), 0ms).trigger);
    EXPECT_TRUE(p.decide(mem(499, 10000), 1ms).trigger);
}

TEST(Policy, RecoveryNeverAtOrBelowTheThreshold) {
    PolicySettings s = settings();
    s.recover_available = SizeOrPercent{true, 0, 1.0};  // 1% of 16 GiB = 164 MiB < 500 MiB
    Policy p(s);
    Levels l = p.levels(16384 * MiB);
    EXPECT_GT(l.recover, l.min);
}

TEST(Policy, AdaptivePollingFollowsHeadroom) {
    // The headroom / fill_rate part alone: a fresh policy per probe (no fall seen),
    // idle_interval out of the way.
    PolicySettings s = settings();
    s.idle_interval = s.min_interval;
    auto first = [&](uint64_t m) { return Policy(s).decide(mem(m), 0ms).next_poll; };
    // 4 GiB/s fill rate: 8 GiB of headroom -> clamp to max 1s.
    EXPECT_EQ(first(500 + 8192), 1s);
    // 400 MiB of headroom -> ~98ms.
    Duration d = first(900);
    EXPECT_GT(d, 90ms);
    EXPECT_LT(d, 100ms);
    // Near the threshold -> min_interval.
    EXPECT_EQ(first(501), 1ms);
    // Memory cannot cross before the next sample if it fills no faster than fill_rate.
    for (uint64_t m = 501; m < 20000; m += 97) {
        double secs = std::chrono::duration<double>(first(m)).count();
        EXPECT_LE(secs * static_cast<double>(4ull << 30), static_cast<double>((m - 500) * MiB) + 4.3e6) << m;
    }
}

TEST(Policy, SteadyMemoryPollsNoFasterThanIdleInterval) {
    Policy p(settings());  // idle_interval 100ms
    Duration t = 0s;
    for (int i = 0; i < 50; ++i) {
        Duration d = p.decide(mem(510), t).next_poll;  // 10 MiB above, steady
        EXPECT_EQ(d, 100ms) << i;
        t += d;
    }
    // A fall is seen: the idle floor no longer applies.
    Duration d = p.decide(mem(505), t).next_poll;
    EXPECT_LT(d, 100ms);
}

TEST(Policy, FallingMemoryShortensThePoll) {
    Policy p(settings());
    Duration t = 0s;
    uint64_t m = 3000;
    Duration steady = p.decide(mem(m), t).next_poll;
    // Falling at 8 GiB/s (twice fill_rate): the estimate takes over.
    t += 10ms;
    m -= 80;
    Duration falling = p.decide(mem(m), t).next_poll;
    EXPECT_LT(falling, steady);
    double secs = std::chrono::duration<double>(falling).count();
    EXPECT_LE(secs * 8.0 * (1ull << 30), static_cast<double>((m - 500) * MiB))
        << "would cross unseen";
}

TEST(Policy, PollsForRepeatWhileLow) {
    Policy p(settings());
    Decision d = p.decide(mem(100), 0ms);
    EXPECT_TRUE(d.trigger);
    EXPECT_LE(d.next_poll, 100ms);
    EXPECT_GE(d.next_poll, 1ms);
}

TEST(Policy, ReconfigureKeepsEpisode) {
    Policy p(settings());
    EXPECT_TRUE(p.decide(mem(400), 0ms).trigger);
    PolicySettings s = settings();
    s.min_available = SizeOrPercent{false, 450 * MiB, 0};
    p.reconfigure(s);
    EXPECT_FALSE(p.decide(mem(420), 100ms).trigger) << "a reload mid-episode must not re-trigger at once";
    EXPECT_TRUE(p.in_episode());
}

// ---- Issue 10, defect 3: a failed action is retried soon, with a capped backoff,
// and only a success starts the repeat_after clock.

TEST(PolicyActionResult, FailedActionIsRetriedWithBackoffNotAfterRepeatAfter) {
    PolicySettings s = settings();
    s.repeat_after = 3600s;
    Policy p(s);
    EXPECT_FALSE(p.decide(mem(600), 0ms).trigger);
    Duration t = 10ms;
    Decision d = p.decide(mem(400), t);
    ASSERT_TRUE(d.trigger);
    // 10 ms, 20, 40, ... capped at 1 s: each failure asks for a retry that soon.
    Duration expected = Policy::kRetryFirst;
    for (int failure = 1; failure <= 10; ++failure) {
        const Duration retry = p.action_result(false, t);
        EXPECT_EQ(retry, expected) << "failure " << failure;
        EXPECT_EQ(p.consecutive_failures(), static_cast<unsigned>(failure));
        // Before the retry is due: no action, and the next poll comes when it is.
        Decision early = p.decide(mem(400), t + retry / 2);
        EXPECT_FALSE(early.trigger) << "failure " << failure;
        EXPECT_LE(early.next_poll, retry - retry / 2) << "failure " << failure;
        t += retry;
        d = p.decide(mem(400), t);
        ASSERT_TRUE(d.trigger) << "no retry after failure " << failure;
        EXPECT_FALSE(d.repeat) << "nothing was done yet: not a repeat";
        expected = std::min(expected * 2, Policy::kRetryMax);
    }
    EXPECT_EQ(expected, Policy::kRetryMax);
    // The success starts the repeat_after clock: nothing for the next hour.
    EXPECT_EQ(p.action_result(true, t), Duration::max());
    EXPECT_EQ(p.consecutive_failures(), 0u);
    int more = 0;
    for (Duration u = t + 1ms; u < t + 10s; u += 50ms) more += p.decide(mem(400), u).trigger;
    EXPECT_EQ(more, 0);
    Decision rep = p.decide(mem(400), t + 3600s);
    EXPECT_TRUE(rep.trigger);
    EXPECT_TRUE(rep.repeat);
}

TEST(PolicyActionResult, FailedRepeatKeepsTheLastSuccessAndRetriesSoon) {
    Policy p(settings());  // repeat_after 1 s
    ASSERT_TRUE(p.decide(mem(400), 0ms).trigger);
    p.action_result(true, 0ms);
    Decision d = p.decide(mem(400), 1000ms);
    ASSERT_TRUE(d.trigger);
    ASSERT_TRUE(d.repeat);
    EXPECT_EQ(p.action_result(false, 1000ms), Policy::kRetryFirst);
    EXPECT_FALSE(p.decide(mem(400), 1005ms).trigger);
    d = p.decide(mem(400), 1010ms);
    EXPECT_TRUE(d.trigger) << "the failed repeat was not retried after 10 ms";
    EXPECT_TRUE(d.repeat);
    p.action_result(true, 1010ms);
    EXPECT_FALSE(p.decide(mem(400), 1500ms).trigger);
    EXPECT_TRUE(p.decide(mem(400), 2010ms).trigger);
}

TEST(PolicyActionResult, RecoveryEndsTheRetries) {
    Policy p(settings());
    ASSERT_TRUE(p.decide(mem(400), 0ms).trigger);
    p.action_result(false, 0ms);
    Decision end = p.decide(mem(2000), 5ms);  // back above recover (2 x min)
    EXPECT_TRUE(end.episode_ended);
    EXPECT_FALSE(end.episode_had_trigger) << "a failed action is not a trigger";
    EXPECT_EQ(p.consecutive_failures(), 0u);
    // A new episode starts with a fresh trigger, not a pending retry.
    Decision d = p.decide(mem(400), 6ms);
    EXPECT_TRUE(d.trigger);
    EXPECT_EQ(d.episode, 2u);
    EXPECT_EQ(p.action_result(false, 6ms), Policy::kRetryFirst);
}

TEST(PolicyActionResult, WithoutAReportDecideBehavesAsBefore) {
    // Callers that never report (benchmarks, the hot-path test) see a success.
    Policy p(settings());
    int n = 0;
    for (Duration t = 0ms; t < 2500ms; t += 10ms) n += p.decide(mem(400), t).trigger;
    EXPECT_EQ(n, 3);  // at 0, 1 s and 2 s
}

// --- Defect 2 (issue 10): min_interval above 100 ms below the threshold. The old
// repeat poll was std::clamp(until_repeat, min_interval, min(max_interval, 100ms)):
// lo > hi, an abort under -D_GLIBCXX_ASSERTIONS, and 100 ms (< min_interval) without.
TEST(Policy, MinIntervalAbove100msIsHonouredBelowThreshold) {
    PolicySettings s = settings();
    s.min_interval = 200ms;
    s.max_interval = 2s;
    Policy p(s);
    Decision d = p.decide(mem(100), 0ms);
    EXPECT_TRUE(d.trigger);
    EXPECT_GE(d.next_poll, 200ms);
    EXPECT_LE(d.next_poll, 2s);
    for (Duration t = 200ms; t < 5s; t += d.next_poll) {
        d = p.decide(mem(100), t);
        EXPECT_GE(d.next_poll, 200ms) << "at " << t.count();
        EXPECT_LE(d.next_poll, 2s);
    }
}

// Every decision, in every state, stays inside [min_interval, max_interval],
// whatever valid interval settings (min <= max) are configured.
TEST(Policy, NextPollAlwaysWithinConfiguredBounds) {
    const Duration mins[] = {100us, 1ms, 50ms, 100ms, 150ms, 1s, 10s};
    const Duration maxs[] = {1ms, 100ms, 150ms, 1s, 10s, 60s};
    for (Duration lo : mins) {
        for (Duration hi : maxs) {
            if (lo > hi) continue;
            PolicySettings s = settings();
            s.min_interval = lo;
            s.max_interval = hi;
            Policy p(s);
            Duration t = 0s;
            for (uint64_t m : {100000, 8000, 900, 501, 499, 100, 100, 400, 999, 1001, 5000, 100}) {
                Decision d = p.decide(mem(m, 200000), t);
                EXPECT_GE(d.next_poll, lo)
                    << "min " << lo.count() << " max " << hi.count() << " avail " << m;
                EXPECT_LE(d.next_poll, hi)
                    << "min " << lo.count() << " max " << hi.count() << " avail " << m;
                t += d.next_poll;
            }
        }
    }
}

// --- Defect 4 (issue 10): the derived recovery level (2 x min) must stay below
// MemTotal, or an episode never ends.
TEST(Policy, DefaultRecoveryIsCappedBelowMemTotal) {
    PolicySettings s = settings();
    s.min_available = SizeOrPercent{false, 3072 * MiB, 0};  // valid on a 4 GiB node
    Policy p(s);
    Levels l = p.levels(4096 * MiB);
    EXPECT_GT(l.recover, l.min);
    EXPECT_LT(l.recover, 4096 * MiB);
    // A 4 GiB node idling at 3.7 GiB available ends the episode.
    EXPECT_TRUE(p.decide(mem(3000, 4096), 0ms).trigger);
    EXPECT_TRUE(p.decide(mem(3700, 4096), 100ms).episode_ended);
}

// --- Issue 17: the poll schedule against ramps, with the fake clock. A ramp at
// `rate` from `start_headroom` above the threshold down to a floor `margin` below it,
// starting at `phase` (0..1) of the interval after a steady-state sample. Returns
// the time from the crossing to the first sample below the threshold, or -1 when
// the first such sample came only after the floor was reached (missed).
namespace {

struct RampResult {
    double latency_ms = -1;  // crossing -> first sample below the threshold
    double gap_ms = 0;       // the sample gap that spans the crossing
    int samples = 0;
};

RampResult simulate_ramp(const PolicySettings& s, double rate, uint64_t start_headroom,
                         uint64_t margin, double phase) {
    const uint64_t total = 64ull << 30, thr = s.min_available.resolve(total);
    const double level0 = static_cast<double>(thr + start_headroom);
    Policy p(s);
    // 30 s of steady memory first, so the estimator has settled.
    Duration t = 0s;
    Duration last_interval{0};
    while (t < 30s) {
        last_interval = p.decide(MemSample{total, thr + start_headroom, 0}, t).next_poll;
        t += last_interval;
    }
    const double t0 = std::chrono::duration<double>(t - last_interval).count() +
                      phase * std::chrono::duration<double>(last_interval).count();
    const double t_cross = t0 + static_cast<double>(start_headroom) / rate;
    const double t_floor = t0 + static_cast<double>(start_headroom + margin) / rate;
    RampResult r;
    double prev = std::chrono::duration<double>(t - last_interval).count();
    for (int i = 0; i < 100000; ++i) {
        const double now = std::chrono::duration<double>(t).count();
        const double level = std::max(now <= t0 ? level0 : level0 - rate * (now - t0),
                                      static_cast<double>(thr - margin));
        Decision d = p.decide(MemSample{total, static_cast<uint64_t>(level), 0}, t);
        ++r.samples;
        if (level < static_cast<double>(thr)) {
            r.gap_ms = (now - prev) * 1e3;
            if (now < t_floor) r.latency_ms = (now - t_cross) * 1e3;
            return r;
        }
        prev = now;
        t += d.next_poll;
    }
    return r;
}

PolicySettings shipped_poll() {
    PolicySettings s;  // the shipped [poll] defaults
    s.min_available = SizeOrPercent{false, 350 * MiB, 0};
    return s;
}

}  // namespace

// The case: 10 GB/s from 3 GiB above the threshold to a floor 256 MiB below.
// The old schedule (4 GiB/s, max 2 s) slept ~0.75 s at 3 GiB: every episode missed.
TEST(PollSchedule, CatchesTenGBsSpikeFromThreeGiB) {
    int caught = 0, n = 0;
    for (double phase = 0.0; phase < 1.0; phase += 1.0 / 64, ++n) {
        RampResult r = simulate_ramp(shipped_poll(), 10e9, 3ull << 30, 256 * MiB, phase);
        caught += r.latency_ms >= 0;
        EXPECT_GE(r.latency_ms, 0) << "phase " << phase << ": missed, gap " << r.gap_ms << " ms";
        EXPECT_LE(r.latency_ms, 5.0) << "phase " << phase;
    }
    std::printf("10 GB/s from 3 GiB, 256 MiB margin: %d/%d caught\n", caught, n);
}

// Rates 1, 4, 10 GB/s with margins 128 and 256 MiB, from any headroom where a
// poller at the idle cost allows it (see poll_interval): the sample gap that spans
// the crossing is at most margin / rate.
TEST(PollSchedule, NoGapLargerThanMarginOverRateNearThreshold) {
    for (double rate : {1e9, 4e9, 10e9}) {
        for (uint64_t margin : {128 * MiB, 256 * MiB}) {
            for (uint64_t h : {1ull << 30, 3ull << 30, 8ull << 30, 20ull << 30, 64ull << 30}) {
                if (rate >= 10e9 && h < (1ull << 30)) continue;  // physics: see below
                for (double phase = 0.0; phase < 1.0; phase += 1.0 / 16) {
                    RampResult r = simulate_ramp(shipped_poll(), rate, h, margin, phase);
                    const double bound_ms = static_cast<double>(margin) / rate * 1e3;
                    EXPECT_GE(r.latency_ms, 0)
                        << rate << " B/s from " << (h >> 20) << " MiB, margin " << (margin >> 20)
                        << " MiB, phase " << phase;
                    EXPECT_LE(r.gap_ms, bound_ms)
                        << rate << " B/s from " << (h >> 20) << " MiB, phase " << phase;
                }
            }
        }
    }
}

// 20 GB/s exceeds the assumed floor rate (12 GiB/s): from steady memory the first
// sleep can be longer than the whole descent, so no catch is promised; print the share.
// Once the fall has been seen, the estimate takes over and the crossing is caught.
TEST(PollSchedule, TwentyGBsIsFollowedOnceSeen) {
    for (uint64_t h : {1ull << 30, 3ull << 30, 8ull << 30}) {
        int caught = 0, n = 0;
        for (double phase = 0.0; phase < 1.0; phase += 1.0 / 64, ++n)
            caught += simulate_ramp(shipped_poll(), 20e9, h, 256 * MiB, phase).latency_ms >= 0;
        std::printf("20 GB/s from %llu MiB, 256 MiB margin: %d/%d caught\n",
                    static_cast<unsigned long long>(h >> 20), caught, n);
    }
    // A ramp already running when it comes within 24 GiB: seen at two samples, then followed.
    for (double phase = 0.0; phase < 1.0; phase += 1.0 / 16) {
        RampResult r = simulate_ramp(shipped_poll(), 20e9, 60ull << 30, 256 * MiB, phase);
        EXPECT_GE(r.latency_ms, 0) << "phase " << phase;
    }
}

// Idle cost: lots of headroom costs at most 1 wakeup/s (0.5 from 24 GiB), 500 MiB of steady headroom
// at most 10/s (earlyoom 1.7: 1/s and 10/s).
TEST(PollSchedule, IdleCostWithSteadyMemory) {
    auto wakeups_per_s = [](uint64_t headroom) {
        PolicySettings s = shipped_poll();
        Policy p(s);
        const uint64_t total = 64ull << 30, thr = 350 * MiB;
        int n = 0;
        Duration t = 0s;
        // A little jitter, as real MemAvailable has: +-4 MiB.
        for (; t < 60s; ++n)
            t += p.decide(MemSample{total, thr + headroom + ((n % 3) - 1) * 4 * MiB, 0}, t)
                     .next_poll;
        return n / std::chrono::duration<double>(t).count();
    };
    EXPECT_LE(wakeups_per_s(32ull << 30), 0.51);
    EXPECT_LE(wakeups_per_s(20ull << 30), 1.01);
    EXPECT_LE(wakeups_per_s(500 * MiB), 10.01);
    std::printf(
        "wakeups/s: 32 GiB %.2f, 20 GiB %.2f, 8 GiB %.2f, 3 GiB %.2f, 1 GiB %.2f, 500 MiB %.2f, 50 "
        "MiB %.2f\n",
        wakeups_per_s(32ull << 30), wakeups_per_s(20ull << 30), wakeups_per_s(8ull << 30),
        wakeups_per_s(3ull << 30), wakeups_per_s(1ull << 30), wakeups_per_s(500 * MiB),
        wakeups_per_s(50 * MiB));
}

// ---- the loop's wakeups (issue 17): slow periodic work rides on a sample -----

namespace {
constexpr int64_t ns(Duration d) { return d.count(); }
}  // namespace

TEST(LoopWake, ARefreshJustBeforeTheNextSampleWaitsForIt) {
    // The cgroup refresh (10 s) due 1.2 s before a sample: one wakeup, the sample's.
    EXPECT_EQ(loop_timeout_ns(ns(10'000ms), {ns(8'800ms)}), ns(10'000ms));
    // At 20 GiB of headroom the sample comes every 1.67 s, the refresh every 10 s:
    // the refresh is never more than 1.67 s (< 2.5 s) late, so never a wakeup of its own.
    EXPECT_TRUE(waits_for_tick(ns(10'000ms), ns(10'000ms + 1'667ms)));
    EXPECT_FALSE(waits_for_tick(ns(10'000ms), ns(10'000ms + 2'501ms)));
}

TEST(LoopWake, UrgentSourceWorkIsNeverDeferred) {
    // Due now (a listing cut short, a capped kmsg read): at once.
    EXPECT_EQ(loop_timeout_ns(ns(100ms), {0}), 0);
    // A 1 ms retry (a busy bus channel) before a sample 100 ms away: 1 ms.
    EXPECT_EQ(loop_timeout_ns(ns(100ms), {ns(1ms)}), ns(1ms));
    // The 50 ms kmsg assembler flush before a sample 100 ms away.
    EXPECT_EQ(loop_timeout_ns(ns(100ms), {ns(50ms)}), ns(50ms));
    // Of several, the earliest that cannot wait.
    EXPECT_EQ(loop_timeout_ns(ns(2'000ms), {ns(1'900ms), ns(500ms), -1}), ns(500ms));
}

TEST(LoopWake, TheSampleIsNeverLaterThanItsOwnDeadline) {
    // A source's timeout can only make the loop wake earlier than the sample, never later.
    for (int64_t tick : {int64_t{0}, ns(1ms), ns(100ms), ns(1'667ms), ns(2'000ms)})
        for (int64_t src : {int64_t{-1}, int64_t{0}, ns(1ms), ns(90ms), ns(3'000ms), ns(10'000ms)})
            EXPECT_LE(loop_timeout_ns(tick, {src}), tick) << tick << " " << src;
    // A sample already overdue: at once, whatever the sources say.
    EXPECT_EQ(loop_timeout_ns(-5, {ns(10'000ms)}), 0);
    EXPECT_EQ(loop_timeout_ns(ns(1ms), {}), ns(1ms));
}

TEST(LoopWake, ARefreshBetweenSamples100msApartNeverWakesTheLoopOfItsOwn) {
    // 500 MiB of steady headroom: a sample every 100 ms; the cgroup refresh is due
    // 10 s after it was scheduled, at t = 10.05 s, between two samples.
    WakeCoalescer w;
    const int64_t refresh_at = ns(10'050ms);
    int own_wakeups = 0;
    for (int64_t now = 0; now < ns(10'000ms) + 1; now += ns(100ms)) {
        const int64_t t = w.timeout_ns(now, ns(100ms), {refresh_at - now});
        EXPECT_LE(t, ns(100ms));
        if (t < ns(100ms)) ++own_wakeups;
    }
    EXPECT_EQ(own_wakeups, 0) << "the refresh rides on the 10.1 s sample";
    // What is left of the timeout alone is not enough: 50 ms left, a sample in 100 ms.
    EXPECT_EQ(loop_timeout_ns(ns(100ms), {ns(50ms)}), ns(50ms));
    // A new deadline (the source rescheduled) gets the slack of its own timeout.
    EXPECT_EQ(w.timeout_ns(ns(10'100ms), ns(100ms), {ns(1ms)}), ns(1ms));
    EXPECT_EQ(w.timeout_ns(ns(10'100ms), ns(100ms), {0}), 0) << "work due now is never deferred";
}
