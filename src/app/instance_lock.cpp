#include "app/instance_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <syslog.h>
#include <unistd.h>

#include <cstring>

namespace oomguard {
namespace {

std::string u64(uint64_t v) { return std::to_string(v); }

}  // namespace

Result<int> take_instance_lock(const std::string& path, Log& log) {
    if (path.empty()) return -1;
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        // Not fatal: guarding the node matters more than the lock.
        const int err = errno;
        log.log(Event::Info, err == ENOENT ? LOG_NOTICE : LOG_WARNING,
                "no instance lock: cannot open " + path + ": " + std::strerror(err) +
                    "; a second oomguard on this node would not be noticed",
                {{"OOMGUARD_LOCK", path}, {"ERRNO", u64(static_cast<uint64_t>(err))}});
        return -1;
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        if (err == EWOULDBLOCK) {
            char buf[32] = {};
            ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
            std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
            while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
            ::close(fd);
            log.log(Event::SensorError, LOG_ERR,
                    "cannot start: another oomguard instance (pid " +
                        (pid.empty() ? std::string("unknown") : pid) + ") holds the lock " + path +
                        "; two instances would both act on the same crossing. Run one only "
                        "(the host package or the DaemonSet), or give a test instance its "
                        "own [paths] lock",
                    {{"OOMGUARD_LOCK", path}, {"OOMGUARD_LOCK_PID", pid}});
            return Error::logic("another instance holds " + path);
        }
        log.log(Event::Info, LOG_WARNING,
                "no instance lock: flock " + path + ": " + std::strerror(err),
                {{"OOMGUARD_LOCK", path}, {"ERRNO", u64(static_cast<uint64_t>(err))}});
        ::close(fd);
        return -1;
    }
    // The holder's pid, for the refusal of the next one (in our pid namespace).
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 ||
        ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
        log.log(Event::Info, LOG_WARNING,
                "instance lock " + path +
                    " taken, but writing the pid failed: " + std::strerror(errno));
    return fd;
}

}  // namespace oomguard
