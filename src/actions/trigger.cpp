#include "actions/trigger.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace oomguard {

Status SysrqTrigger::fire() const {
    // O_APPEND: a plain file used in tests collects one 'f' per trigger.
    // O_NONBLOCK: a FIFO nobody reads fails with ENXIO instead of hanging.
    int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int err = errno;
        if (err == ENXIO) return Error{err, path_ + ": FIFO has no reader"};
        return Error::sys(err, "cannot open trigger " + path_);
    }
    ssize_t n = ::write(fd, "f", 1);
    int err = errno;
    ::close(fd);
    if (n != 1) {
        if (n < 0 && err == EAGAIN) return Error{err, path_ + ": FIFO is full (reader stalled)"};
        return Error::sys(n < 0 ? err : EIO, "cannot write trigger " + path_);
    }
    return ok_status();
}

Status SysrqTrigger::probe() const {
    struct stat st;
    if (::stat(path_.c_str(), &st) != 0) return Error::sys(errno, "cannot open trigger " + path_);
    if (S_ISDIR(st.st_mode)) return Error::sys(EISDIR, "cannot open trigger " + path_);
    if (S_ISFIFO(st.st_mode)) {
        // Only an open tells whether a FIFO has a reader; opening writes nothing.
        int fd = ::open(path_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
            int err = errno;
            if (err == ENXIO) return Error{err, path_ + ": FIFO has no reader yet"};
            return Error::sys(err, "cannot open trigger " + path_);
        }
        ::close(fd);
        return ok_status();
    }
    // Anything else, /proc/sysrq-trigger above all, is never opened here: the
    // permission check (read-only mount, mode, owner) needs no open.
    if (::faccessat(AT_FDCWD, path_.c_str(), W_OK, AT_EACCESS) != 0)
        return Error::sys(errno, "cannot open trigger " + path_);
    return ok_status();
}

}  // namespace oomguard
