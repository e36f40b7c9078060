#include "app/loop_poller.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace oomguard {

LoopPoller::~LoopPoller() {
    if (ep_ >= 0) ::close(ep_);
}

bool LoopPoller::same_set(const std::vector<pollfd>& fds) const {
    if (fds.size() != registered_.size()) return false;
    for (size_t i = 0; i < fds.size(); ++i)
        if (fds[i].fd != registered_[i].fd || fds[i].events != registered_[i].events) return false;
    return true;
}

bool LoopPoller::build(const std::vector<pollfd>& fds) {
    // A new set, not a diff of the old one: an fd closed meanwhile has already
    // left the old set, and one reopened under its number must be added anew.
    if (ep_ >= 0) ::close(ep_);
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) {
        why_ = std::string("epoll_create1: ") + std::strerror(errno);
        return false;
    }
    for (size_t i = 0; i < fds.size(); ++i) {
        if (fds[i].fd < 0) continue;
        epoll_event ev{};
        // poll's and epoll's bits are the same on Linux (POLLIN == EPOLLIN, ...).
        ev.events = static_cast<uint32_t>(static_cast<unsigned short>(fds[i].events));
        // The fd in the low half, the slot in the high half: strace then shows
        // each ready fd by its number ("data={u32=6, ...}"), as it does for ppoll.
        ev.data.u64 = (static_cast<uint64_t>(i) << 32) | static_cast<uint32_t>(fds[i].fd);
        // EPERM: a regular file; EEXIST: one fd in two slots. ppoll handles both.
        if (::epoll_ctl(ep_, EPOLL_CTL_ADD, fds[i].fd, &ev) != 0) {
            why_ = "epoll_ctl(fd " + std::to_string(fds[i].fd) + "): " + std::strerror(errno);
            return false;
        }
    }
    registered_ = fds;
    ready_.resize(fds.size() ? fds.size() : 1);
    ++registrations_;
    return true;
}

void LoopPoller::fall_back() {
    if (ep_ >= 0) ::close(ep_);
    ep_ = -1;
    registered_.clear();
    mode_ = Mode::Ppoll;
}

int LoopPoller::wait(std::vector<pollfd>& fds, int64_t timeout_ns, uint64_t generation) {
    if (timeout_ns < 0) timeout_ns = 0;
    const timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000),
                      static_cast<long>(timeout_ns % 1'000'000'000)};
    for (auto& p : fds) p.revents = 0;
    if (mode_ != Mode::Ppoll &&
        (mode_ == Mode::Untried || generation != generation_ || !same_set(fds))) {
        if (build(fds)) {
            mode_ = Mode::Epoll;
            generation_ = generation;
        } else {
            fall_back();  // build() said why
        }
    }
    if (mode_ == Mode::Epoll) {
        int n = ::epoll_pwait2(ep_, ready_.data(), static_cast<int>(ready_.size()), &ts, nullptr);
        if (n >= 0) {
            for (int i = 0; i < n; ++i) {
                const size_t slot = static_cast<size_t>(ready_[static_cast<size_t>(i)].data.u64 >> 32);
                fds[slot].revents =
                    static_cast<short>(ready_[static_cast<size_t>(i)].events & 0xffff);
            }
            return n;
        }
        if (errno == EINTR) return -1;  // the caller goes round again
        // ENOSYS: Linux < 5.11; EPERM: a seccomp filter that predates it (an
        // older systemd's @system-service, SystemCallErrorNumber=EPERM).
        why_ = std::string("epoll_pwait2: ") + std::strerror(errno);
        fall_back();
    }
    return ::ppoll(fds.data(), fds.size(), &ts, nullptr);
}

}  // namespace oomguard
