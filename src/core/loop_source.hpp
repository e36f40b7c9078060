// Something else the daemon's poll() loop polls (kmsg, the D-Bus channel, the
// cgroup refresh). timeout_ns < 0: none.
#pragma once

#include <cstdint>

namespace oomguard {

class LoopSource {
public:
    virtual ~LoopSource() = default;
    struct Spec {
        int fd = -1;
        short events = 0;
        int64_t timeout_ns = -1;
    };
    virtual Spec poll_spec() = 0;
    // Called when the fd is ready or the timeout passed (revents == 0).
    virtual void dispatch(short revents) = 0;
};

}  // namespace oomguard
