#include "bus/bus_probe.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace oomguard {

Status BusProbe::start(const std::string& socket_path, uid_t uid) {
    close();
    path_ = socket_path;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof addr.sun_path)
        return Error::logic("D-Bus socket path is too long: " + socket_path);
    std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return Error::sys(errno, "socket");
    // A unix socket connects at once (or fails); it never reports EINPROGRESS.
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        int err = errno;
        ::close(fd);
        return Error::sys(err, "connect " + socket_path);
    }
    // The EXTERNAL mechanism's argument is the uid as decimal text, hex-encoded.
    std::string line("\0AUTH EXTERNAL ", 15);
    for (char c : std::to_string(uid)) {
        char hex[3];
        std::snprintf(hex, sizeof hex, "%02x", static_cast<unsigned char>(c));
        line += hex;
    }
    line += "\r\n";
    ssize_t n = ::send(fd, line.data(), line.size(), MSG_NOSIGNAL);
    if (n != static_cast<ssize_t>(line.size())) {
        int err = n < 0 ? errno : EAGAIN;
        ::close(fd);
        return Error::sys(err, "send to " + socket_path);
    }
    fd_ = fd;
    reply_.clear();
    return ok_status();
}

Result<BusProbe::Step> BusProbe::advance(short revents) {
    if (fd_ < 0) return Error::logic("no probe");
    if (revents & POLLIN) {
        char buf[256];
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n > 0) {
            reply_.append(buf, static_cast<size_t>(n));
            size_t eol = reply_.find("\r\n");
            if (eol == std::string::npos) {
                if (reply_.size() > 512)
                    return Error::logic("unexpected answer from the bus daemon at " + path_);
                return Step::Pending;
            }
            if (reply_.compare(0, 3, "OK ") == 0) return Step::Answered;
            return Error::logic("the bus daemon at " + path_ +
                                " refused authentication: " + reply_.substr(0, eol));
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return Step::Pending;
        // The message says what an operator needs; the errno (0 for an EOF) rides along.
        return Error{n < 0 ? errno : 0, "the bus daemon at " + path_ + " closed the connection"};
    }
    if (revents & (POLLHUP | POLLERR | POLLNVAL))
        return Error::logic("the bus daemon at " + path_ + " hung up");
    return Step::Pending;
}

void BusProbe::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

}  // namespace oomguard
