// A non-blocking eventfd: one thread (or the predictor) wakes a poll() loop with
// a write(2) of 8 bytes, which never blocks.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

namespace oomguard {

class EventFd {
public:
    EventFd() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
    ~EventFd() {
        if (fd_ >= 0) ::close(fd_);
    }
    EventFd(const EventFd&) = delete;
    EventFd& operator=(const EventFd&) = delete;
    int fd() const { return fd_; }
    void wake() {
        uint64_t one = 1;
        ssize_t r = ::write(fd_, &one, sizeof one);
        (void)r;  // EAGAIN: the counter is saturated, the reader wakes anyway
    }
    void drain() {
        uint64_t v;
        ssize_t r = ::read(fd_, &v, sizeof v);
        (void)r;
    }

private:
    int fd_;
};

}  // namespace oomguard
