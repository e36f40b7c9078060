#include "sensors/psi.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <cmath>
#include <cstdio>

namespace oomguard {

PsiTrigger::~PsiTrigger() { close(); }

void PsiTrigger::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

Status PsiTrigger::open(const std::string& proc_root, Duration stall, Duration window) {
    close();
    std::string path = proc_root + "/pressure/memory";
    int fd = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return Error::sys(errno, path);
    char buf[64];
    int n = std::snprintf(buf, sizeof buf, "some %lld %lld",
                          static_cast<long long>(stall.count() / 1000),
                          static_cast<long long>(window.count() / 1000));
    // The trigger string includes its terminating NUL, as the kernel docs show.
    if (::write(fd, buf, static_cast<size_t>(n) + 1) < 0) {
        int err = errno;
        ::close(fd);
        return Error::sys(err, "cannot install PSI trigger on " + path);
    }
    fd_ = fd;
    return ok_status();
}

namespace {

// rest: " avg10=0.00 avg60=0.00 avg300=0.00 total=0". Each field exactly once;
// averages are finite and not negative, total is all digits.
bool parse_line(std::string_view rest, PsiLine& out) {
    constexpr unsigned kAvg10 = 1, kAvg60 = 2, kAvg300 = 4, kTotal = 8;
    unsigned found = 0;
    while (!rest.empty()) {
        while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
        size_t sp = rest.find(' ');
        std::string_view tok = rest.substr(0, sp);
        rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp);
        size_t eq = tok.find('=');
        if (eq == std::string_view::npos) continue;
        std::string_view k = tok.substr(0, eq), v = tok.substr(eq + 1);
        const unsigned bit = k == "total"    ? kTotal
                             : k == "avg10"  ? kAvg10
                             : k == "avg60"  ? kAvg60
                             : k == "avg300" ? kAvg300
                                             : 0u;
        if (!bit) continue;
        if (found & bit) return false;
        found |= bit;
        if (bit == kTotal) {
            auto r = std::from_chars(v.data(), v.data() + v.size(), out.total_us);
            if (r.ec != std::errc() || r.ptr != v.data() + v.size()) return false;
        } else {
            double d = 0;
            auto r = std::from_chars(v.data(), v.data() + v.size(), d, std::chars_format::fixed);
            if (r.ec != std::errc() || r.ptr != v.data() + v.size() || !(d >= 0.0) ||
                !std::isfinite(d))
                return false;
            (bit == kAvg10 ? out.avg10 : bit == kAvg60 ? out.avg60 : out.avg300) = d;
        }
    }
    return found == (kAvg10 | kAvg60 | kAvg300 | kTotal);
}

}  // namespace

Result<PsiValues> parse_psi(std::string_view text) {
    PsiValues v;
    bool some = false;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        if (line.substr(0, 5) == "some ") {
            if (!parse_line(line.substr(4), v.some)) return Error::logic("malformed PSI 'some' line");
            some = true;
        } else if (line.substr(0, 5) == "full ") {
            if (!parse_line(line.substr(4), v.full)) return Error::logic("malformed PSI 'full' line");
            v.has_full = true;
        }
    }
    if (!some) return Error::logic("no PSI 'some' line");
    return v;
}

}  // namespace oomguard
