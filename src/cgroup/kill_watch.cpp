#include "cgroup/kill_watch.hpp"

#include <fcntl.h>
#include <syslog.h>
#include <unistd.h>

namespace oomguard {

void KillWatch::stop() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

void KillWatch::start(int root_fd, const CgroupInfo& c, const KillOutcome& o,
                      uint64_t avail_at_kill) {
    const char* rel = c.path.c_str();
    while (*rel == '/') ++rel;
    int fd = ::openat(root_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;  // already gone
    stop();
    fd_ = fd;
    label_ = c.path;
    v1_ = o.method != "cgroup.kill";
    working_set_ = c.working_set;
    avail_at_kill_ = avail_at_kill;
    killed_at_ = clock_.now();
    next_check_ = killed_at_ + kInterval;
}

void KillWatch::check(uint64_t avail) {
    const Duration now = clock_.now();
    if (fd_ < 0 || now < next_check_) return;
    long left = cgroup_task_count(fd_);
    const Duration after = now - killed_at_;
    if (left <= 0) {
        const uint64_t back = avail > avail_at_kill_ ? avail - avail_at_kill_ : 0;
        log_.log(Event::Info, LOG_NOTICE,
                 "killed container cgroup " + label_ + " is empty after " + format_duration(after) +
                     ": it held " + format_bytes(working_set_) + "; MemAvailable " +
                     format_bytes(avail_at_kill_) + " -> " + format_bytes(avail) + " (+" +
                     format_bytes(back) + ")",
                 {{"OOMGUARD_CGROUP", label_},
                  {"OOMGUARD_WORKING_SET_BYTES", std::to_string(working_set_)},
                  {"OOMGUARD_FREED_BYTES", std::to_string(back)},
                  {"OOMGUARD_EMPTY_AFTER_USEC",
                   std::to_string(
                       std::chrono::duration_cast<std::chrono::microseconds>(after).count())}});
        stop();
        return;
    }
    if (after >= kLimit) {
        log_.log(Event::Info, LOG_WARNING,
                 "killed container cgroup " + label_ + " still lists " + std::to_string(left) +
                     " task(s) after " + format_duration(after),
                 {{"OOMGUARD_CGROUP", label_}});
        stop();
        return;
    }
    if (v1_) {
        // Tasks forked after the kill (v1 has no cgroup.kill to stop them).
        KillOutcome again;
        signal_cgroup_tasks(fd_, label_, again);
    }
    next_check_ = now + kInterval;
}

}  // namespace oomguard
