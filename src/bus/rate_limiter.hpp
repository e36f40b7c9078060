// A token bucket per D-Bus caller (keyed by its unique name, ":1.42"), so that
// no local user can keep the bus thread busy. Generous for people and scripts:
// `rate` calls a second with bursts of `burst`. Bus thread only.
#pragma once

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <string>
#include <unordered_map>

#include "util/units.hpp"  // Duration

namespace oomguard {

class RateLimiter {
public:
    RateLimiter(double rate_per_sec, double burst) : rate_(rate_per_sec), burst_(burst) {}

    // Takes one token of `caller`'s bucket at `now`; false when it is empty.
    bool admit(const std::string& caller, Duration now) {
        if (buckets_.size() >= kMaxCallers) prune(now);
        auto [it, fresh] = buckets_.try_emplace(caller, Bucket{burst_, now});
        Bucket& b = it->second;
        if (!fresh) refill(b, now);
        if (b.tokens < 1.0) return false;
        b.tokens -= 1.0;
        return true;
    }
    double rate() const { return rate_; }
    double burst() const { return burst_; }
    size_t callers() const { return buckets_.size(); }

    // Callers remembered at most; beyond it full (idle) buckets are forgotten.
    static constexpr size_t kMaxCallers = 4096;

private:
    struct Bucket {
        double tokens;
        Duration last;
    };
    double rate_, burst_;
    std::unordered_map<std::string, Bucket> buckets_;

    void refill(Bucket& b, Duration now) const {
        const double secs = std::chrono::duration<double>(now - b.last).count();
        if (secs > 0) b.tokens = std::min(burst_, b.tokens + secs * rate_);
        b.last = now;
    }
    void prune(Duration now) {
        for (auto it = buckets_.begin(); it != buckets_.end();) {
            refill(it->second, now);
            it = it->second.tokens >= burst_ ? buckets_.erase(it) : std::next(it);
        }
        // Everyone is busy (a flood of distinct names): start over rather than grow.
        if (buckets_.size() >= kMaxCallers) buckets_.clear();
    }
};

}  // namespace oomguard
