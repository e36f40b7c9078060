#include "support/rig_io.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>
#include <thread>

namespace oomguard::test {

TriggerFifo::TriggerFifo(const std::string& path) : path_(path) {
    if (mkfifo(path.c_str(), 0600) != 0) throw std::runtime_error("mkfifo " + path);
    fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error("open fifo " + path);
}

TriggerFifo::~TriggerFifo() {
    if (fd_ >= 0) ::close(fd_);
}

size_t TriggerFifo::drain() {
    char buf[256];
    size_t n = 0;
    for (;;) {
        ssize_t r = ::read(fd_, buf, sizeof buf);
        if (r <= 0) break;
        for (ssize_t i = 0; i < r; ++i) n += buf[i] == 'f';
    }
    total_ += n;
    return n;
}

std::optional<Clock::time_point> TriggerFifo::wait_byte(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() < 0) return std::nullopt;
        pollfd p{fd_, POLLIN, 0};
        int r = ::poll(&p, 1, static_cast<int>(left.count()) + 1);
        if (r > 0 && (p.revents & POLLIN)) {
            auto t = Clock::now();
            if (drain() > 0) return t;
        } else if (r > 0 && (p.revents & POLLHUP)) {
            // No writer right now (the daemon closes after each write): sleep briefly.
            std::this_thread::sleep_for(1ms);
        }
    }
}

NotifySocket::NotifySocket(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
        throw std::runtime_error("bind notify socket");
}

NotifySocket::~NotifySocket() {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
}

void NotifySocket::pump(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    int t = static_cast<int>(timeout.count());
    while (::poll(&p, 1, t) > 0) {
        char buf[4096];
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) break;
        messages_.emplace_back(buf, static_cast<size_t>(n));
        t = 0;
    }
}

bool NotifySocket::wait_for(const std::string& needle, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    size_t seen = 0;
    do {
        for (; seen < messages_.size(); ++seen)
            if (messages_[seen].find(needle) != std::string::npos) return true;
        pump(20ms);
    } while (Clock::now() < deadline);
    for (; seen < messages_.size(); ++seen)
        if (messages_[seen].find(needle) != std::string::npos) return true;
    return false;
}

size_t NotifySocket::count(const std::string& needle) const {
    size_t n = 0;
    for (const auto& m : messages_) n += m.find(needle) != std::string::npos;
    return n;
}

}  // namespace oomguard::test
