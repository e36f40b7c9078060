// After a kill-cgroup kill: the emptying of the killed cgroup is watched from
// the loop (dying multi-GiB tasks stay listed while the kernel frees their
// memory, and that is not a failure) and logged with the memory that came back.
// On cgroup v1 (no cgroup.kill) tasks forked after the kill are signalled again.
#pragma once

#include <string>

#include "cgroup/cgroup_killer.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"

namespace oomguard {

class KillWatch {
public:
    static constexpr Duration kInterval = std::chrono::milliseconds(20);
    static constexpr Duration kLimit = std::chrono::seconds(30);

    KillWatch(Log& log, const Clock& clock) : log_(log), clock_(clock) {}
    ~KillWatch() { stop(); }
    KillWatch(const KillWatch&) = delete;
    KillWatch& operator=(const KillWatch&) = delete;

    // Watches `c` (below root_fd) after the kill `o`; replaces an earlier watch.
    void start(int root_fd, const CgroupInfo& c, const KillOutcome& o, uint64_t avail_at_kill);
    // When due: empty -> logged and done; still listed after kLimit -> logged
    // and given up. mem_available: MemAvailable now.
    void check(uint64_t mem_available);
    bool active() const { return fd_ >= 0; }
    Duration next_check() const { return next_check_; }

private:
    Log& log_;
    const Clock& clock_;
    int fd_ = -1;  // the killed cgroup's directory
    std::string label_;
    bool v1_ = false;  // signals, not cgroup.kill: re-signal late forks
    uint64_t working_set_ = 0;
    uint64_t avail_at_kill_ = 0;
    Duration killed_at_{0}, next_check_{0};

    void stop();
};

}  // namespace oomguard
