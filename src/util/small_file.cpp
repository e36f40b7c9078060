#include "util/small_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace oomguard {

Result<std::string> read_small_file(const std::string& path, size_t max) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return Error::sys(errno, path);
    auto fail = [fd](Error e) {
        ::close(fd);
        return e;
    };
    struct stat st;
    if (::fstat(fd, &st) != 0) return fail(Error::sys(errno, path));
    if (!S_ISREG(st.st_mode)) return fail(Error::logic(path + ": not a regular file"));
    // proc and cgroupfs files say 0: their size shows only in the reading.
    if (static_cast<uint64_t>(st.st_size) > max)
        return fail(Error::logic(path + ": " + std::to_string(st.st_size) +
                                 " bytes, more than the " + std::to_string(max) + " read"));
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail(Error::sys(errno, path));
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
        if (out.size() > max)
            return fail(
                Error::logic(path + ": more than the " + std::to_string(max) + " bytes read"));
    }
    ::close(fd);
    return out;
}

}  // namespace oomguard
