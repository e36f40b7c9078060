// Clock: the one source of monotonic time. Components that budget or time
// things (the cgroup monitor, the killer, pod names, the reporter, the bus)
// take a `const Clock&` so that tests drive time by hand, as test_policy.cpp
// does for the policy. Cost: one virtual call per reading.
#pragma once

#include <time.h>

#include <cstdint>

#include "util/units.hpp"

namespace oomguard {

class Clock {
public:
    virtual ~Clock() = default;
    virtual Duration now() const = 0;  // CLOCK_MONOTONIC since boot
};

// CLOCK_MONOTONIC, as the timerfd and the kernel's own timestamps use.
class MonotonicClock final : public Clock {
public:
    Duration now() const override {
        timespec ts{};
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
    }
};

// The process-wide real clock, for wiring and for code that has no injected one.
inline const Clock& monotonic_clock() {
    static const MonotonicClock clock;
    return clock;
}

// CLOCK_REALTIME in microseconds: when something happened, for humans (journal,
// D-Bus LastTrigger/LastVictim). Never used to measure time.
inline uint64_t realtime_usec() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000ull +
           static_cast<uint64_t>(ts.tv_nsec) / 1000ull;
}

// A clock that tests set and advance by hand.
class ManualClock final : public Clock {
public:
    explicit ManualClock(Duration start = Duration{0}) : now_(start) {}
    Duration now() const override { return now_; }
    void set(Duration t) { now_ = t; }
    void advance(Duration d) { now_ += d; }

private:
    Duration now_;
};

}  // namespace oomguard
