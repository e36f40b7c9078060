// A non-blocking AF_UNIX datagram sender for $NOTIFY_SOCKET and the journald
// socket. libsystemd's sd_notify() and sd_journal_sendv() block when the
// receiver's queue is full (net.unix.max_dgram_qlen, 10 by default), so a busy
// PID 1 or a stalled journald -- likely under memory pressure -- would stop the
// loop before it writes the trigger. Here a full queue is an error, not a wait.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#include <string>

#include "util/result.hpp"

namespace oomguard {

class UnixDatagram {
public:
    UnixDatagram() = default;
    ~UnixDatagram();
    UnixDatagram(const UnixDatagram&) = delete;
    UnixDatagram& operator=(const UnixDatagram&) = delete;

    // path: a filesystem path, or "@name" for the abstract namespace. An error
    // names the path when the address is not usable.
    Status open(const std::string& path);
    bool is_open() const { return fd_ >= 0; }
    // One datagram; returns 0 or an errno (EAGAIN: the receiver is not reading).
    int send(const iovec* iov, size_t n);

private:
    int fd_ = -1;
    sockaddr_un addr_{};
    socklen_t addr_len_ = 0;
};

}  // namespace oomguard
