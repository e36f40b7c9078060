// A test clock that advances by `tick` at every reading, so "N readings fit in
// the budget" is an exact count, not a race with the machine's speed.
#pragma once

#include "core/clock.hpp"

namespace oomguard::test {

class TickClock final : public Clock {
public:
    explicit TickClock(Duration tick) : tick_(tick) {}
    Duration now() const override { return t_ += tick_; }
    int readings() const { return static_cast<int>(t_ / tick_); }

private:
    Duration tick_;
    mutable Duration t_{0};
};

}  // namespace oomguard::test
