// The loop's wakeups (issue 17): the next sample's deadline, and the sources'
// own timeouts (the cgroup refresh every 10 s, the kmsg tail, a retry). Slow
// periodic work whose timeout the next sample follows closely waits for that
// sample, so that it rides on the sample's wakeup instead of costing one of its
// own. Pure, so that it is tested without a clock.
#pragma once

#include <cstdint>
#include <vector>

namespace oomguard {

// A source's work may run this fraction of its timeout late (like timer slack,
// proportional): a 10 s refresh up to 2.5 s, a 1 ms retry up to 0.25 ms, work
// due now not at all.
inline constexpr int64_t kSourceSlackDivisor = 4;

// True when a source due in source_ns (>= 0) may wait for the sample due in tick_ns.
constexpr bool waits_for_tick(int64_t source_ns, int64_t tick_ns) {
    return source_ns >= 0 && tick_ns >= source_ns &&
           tick_ns - source_ns <= source_ns / kSourceSlackDivisor;
}

// The loop's sleep in ns: until the next sample (tick_ns >= 0), or until an
// earlier source timeout (< 0: none) that cannot wait for it. A source that
// waits is dispatched after the sample's wakeup, its timeout having passed.
inline int64_t loop_timeout_ns(int64_t tick_ns, const std::vector<int64_t>& source_ns) {
    int64_t t = tick_ns < 0 ? 0 : tick_ns;
    for (int64_t s : source_ns)
        if (s >= 0 && s < t && !waits_for_tick(s, t)) t = s;
    return t;
}

// The same, with each source's slack taken from the timeout it had when its
// deadline was first seen (its period), not from what is left of it: else a
// 10 s refresh whose deadline falls between two samples 100 ms apart has lost
// its slack by then and costs a wakeup of its own.
class WakeCoalescer {
public:
    // Deadlines within this of the remembered one are the same deadline (each
    // source computes its timeout from its own clock reading).
    static constexpr int64_t kSameDeadline = 1'000'000;

    int64_t timeout_ns(int64_t now_ns, int64_t tick_ns, const std::vector<int64_t>& source_ns) {
        if (seen_.size() != source_ns.size()) seen_.assign(source_ns.size(), Seen{});
        int64_t t = tick_ns < 0 ? 0 : tick_ns;
        for (size_t i = 0; i < source_ns.size(); ++i) {
            const int64_t s = source_ns[i];
            if (s < 0) {
                seen_[i] = Seen{};
                continue;
            }
            const int64_t deadline = now_ns + s;
            Seen& k = seen_[i];
            if (k.deadline < 0 || deadline - k.deadline > kSameDeadline ||
                k.deadline - deadline > kSameDeadline)
                k = Seen{deadline, s / kSourceSlackDivisor};
            if (s < t && t - s > k.slack) t = s;
        }
        return t;
    }

private:
    struct Seen {
        int64_t deadline = -1;
        int64_t slack = 0;
    };
    std::vector<Seen> seen_;
};

}  // namespace oomguard
