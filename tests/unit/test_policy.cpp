// Policy with a fake clock, the episode: one trigger at the crossing, repeats,
// warnings, recovery and re-arming, and the retries of a failed action. Pure, ~10 ms.
#include <gtest/gtest.h>

#include "policy_rig.hpp"

using namespace oomguard;
using namespace oomguard::test::policy_rig;
using namespace std::chrono_literals;

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
    EXPECT_EQ(p.levels(16384 * MiB).recover, 1024 * MiB)
        << "recovery defaults to the warning level";
    int warnings = 0;
    Duration t = 0ms;
    for (uint64_t m : {2000, 1000, 900, 1010, 950, 800})
        warnings += p.decide(mem(m), t += 10ms).warn;
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

TEST(Policy, ReconfigureKeepsEpisode) {
    Policy p(settings());
    EXPECT_TRUE(p.decide(mem(400), 0ms).trigger);
    PolicySettings s = settings();
    s.min_available = SizeOrPercent{false, 450 * MiB, 0};
    p.reconfigure(s);
    EXPECT_FALSE(p.decide(mem(420), 100ms).trigger)
        << "a reload mid-episode must not re-trigger at once";
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
