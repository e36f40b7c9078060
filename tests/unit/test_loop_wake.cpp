// The loop's wakeups (issue 17): slow periodic work rides on a sample, urgent
// work never waits (loop_timeout_ns, WakeCoalescer). Pure, < 1 ms.
#include <gtest/gtest.h>

#include "policy/wake.hpp"
#include "util/units.hpp"

using namespace oomguard;
using namespace std::chrono_literals;

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
