#include "service/datagram.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace oomguard {

UnixDatagram::~UnixDatagram() {
    if (fd_ >= 0) ::close(fd_);
}

Status UnixDatagram::open(const std::string& path) {
    if (path.size() < 2 || (path[0] != '/' && path[0] != '@'))
        return Error{EINVAL, "socket address \"" + path + "\": neither a path nor @abstract"};
    if (path.size() >= sizeof addr_.sun_path)
        return Error{EINVAL, "socket address \"" + path + "\": longer than " +
                                 std::to_string(sizeof addr_.sun_path - 1) + " bytes"};
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        const int err = errno;  // before the message string allocates
        return Error::sys(err, "socket for " + path);
    }
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
    addr_ = {};
    addr_.sun_family = AF_UNIX;
    std::memcpy(addr_.sun_path, path.data(), path.size());
    if (path[0] == '@') addr_.sun_path[0] = '\0';
    addr_len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                       (path[0] == '/' ? 1 : 0));
    return ok_status();
}

int UnixDatagram::send(const iovec* iov, size_t n) {
    if (fd_ < 0) return EBADF;
    msghdr mh{};
    mh.msg_name = &addr_;
    mh.msg_namelen = addr_len_;
    mh.msg_iov = const_cast<iovec*>(iov);
    mh.msg_iovlen = n;
    for (;;) {
        if (::sendmsg(fd_, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) return 0;
        if (errno != EINTR) return errno;
    }
}

}  // namespace oomguard
