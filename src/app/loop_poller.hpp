// LoopPoller: the daemon loop's wait, on epoll where it can (issue 17).
//
// Why: ppoll() registers every fd on its wait queue and removes it again on each
// wakeup: with five fds and a 100 ms sleep, a wakeup cost about 18 % more CPU
// than one in epoll_pwait2 (a microbenchmark on the dev host). An epoll set is registered once and
// re-registered only when the loop's fd set changes: a different (fd, events) list, or a new
// generation, which the daemon bumps whenever its sensors may have been reopened (start, reload),
// since a reopened fd can come back with the same number. A source that replaces its fd outside a
// reload must take a new number.
//
// epoll_pwait2 (Linux 5.11) keeps the nanosecond timeout the near-threshold
// sampling needs. Without it (an older kernel, or a seccomp filter that predates
// it and says EPERM), or when an fd cannot be added to epoll (a regular file),
// the poller uses ppoll() from then on: same results, the old cost.
#pragma once

#include <poll.h>
#include <sys/epoll.h>

#include <cstdint>
#include <string>
#include <vector>

namespace oomguard {

class LoopPoller {
public:
    LoopPoller() = default;
    LoopPoller(const LoopPoller&) = delete;
    LoopPoller& operator=(const LoopPoller&) = delete;
    ~LoopPoller();

    // Waits for fds (fd < 0: a slot that is ignored) for at most timeout_ns and
    // fills in their revents, as ppoll() does. Returns what ppoll() would: the
    // number of slots with revents, 0 on timeout, -1 with errno (EINTR).
    int wait(std::vector<pollfd>& fds, int64_t timeout_ns, uint64_t generation);

    bool using_epoll() const { return mode_ != Mode::Ppoll; }
    // Why it went to ppoll() ("" while on epoll): for the daemon's one log line.
    const std::string& fallback_reason() const { return why_; }
    // How often the epoll set was built (tests; a steady loop builds it once).
    uint64_t registrations() const { return registrations_; }

private:
    enum class Mode { Untried, Epoll, Ppoll };
    Mode mode_ = Mode::Untried;
    int ep_ = -1;
    uint64_t generation_ = 0;
    uint64_t registrations_ = 0;
    std::vector<pollfd> registered_;
    std::vector<epoll_event> ready_;
    std::string why_;

    bool same_set(const std::vector<pollfd>& fds) const;
    bool build(const std::vector<pollfd>& fds);
    void fall_back();  // why_ already says why
};

}  // namespace oomguard
