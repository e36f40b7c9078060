#include "sensors/meminfo.hpp"

#include <fcntl.h>
#include <unistd.h>

namespace oomguard {
namespace {

// Parses "   12345 kB" after the colon. Returns false when no digits follow or
// the number does not fit in 64 bits (a wrapped value would look plausible).
bool parse_kb(std::string_view rest, uint64_t& bytes) {
    size_t i = 0;
    while (i < rest.size() && rest[i] == ' ') ++i;
    uint64_t v = 0;
    size_t start = i;
    while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') {
        if (__builtin_mul_overflow(v, 10u, &v) ||
            __builtin_add_overflow(v, static_cast<uint64_t>(rest[i] - '0'), &v))
            return false;
        ++i;
    }
    if (i == start) return false;
    while (i < rest.size() && rest[i] == ' ') ++i;
    // Values are in kB; a line without a unit (HugePages_Total) is not one we read.
    if (rest.substr(i, 2) == "kB" && __builtin_mul_overflow(v, 1024u, &v)) return false;
    bytes = v;
    return true;
}

}  // namespace

MeminfoParse parse_meminfo(std::string_view text, MemSample& out) {
    bool total = false, avail = false, swap = false;
    out.swap_free = 0;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = (nl == std::string_view::npos) ? std::string_view{} : text.substr(nl + 1);
        size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        std::string_view key = line.substr(0, colon);
        std::string_view rest = line.substr(colon + 1);
        uint64_t* dst = nullptr;
        bool* seen = nullptr;
        if (key == "MemTotal") {
            dst = &out.mem_total;
            seen = &total;
        } else if (key == "MemAvailable") {
            dst = &out.mem_available;
            seen = &avail;
        } else if (key == "SwapFree") {
            dst = &out.swap_free;
            seen = &swap;
        } else {
            continue;
        }
        if (!parse_kb(rest, *dst)) return MeminfoParse::Malformed;
        if (seen) *seen = true;
        // SwapFree is line 15 or so of ~55; stop there, whatever its value
        // (testing the value instead read the whole file on swapless nodes).
        if (total && avail && swap) break;
    }
    if (!total) return MeminfoParse::NoMemTotal;
    if (!avail) return MeminfoParse::NoMemAvailable;
    return MeminfoParse::Ok;
}

const char* describe(MeminfoParse p) {
    switch (p) {
        case MeminfoParse::Ok: return "ok";
        case MeminfoParse::NoMemTotal: return "no MemTotal line";
        case MeminfoParse::NoMemAvailable:
            return "no MemAvailable line (the kernel is older than 3.14; oomguard needs MemAvailable)";
        case MeminfoParse::Malformed:
            return "a MemTotal/MemAvailable/SwapFree line has no number, or one too large";
    }
    return "?";
}

MeminfoReader::~MeminfoReader() {
    if (fd_ >= 0) ::close(fd_);
}

Status MeminfoReader::open(const std::string& proc_root) {
    std::string path = proc_root + "/meminfo";
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Error::sys(errno, path);
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
    path_ = std::move(path);
    MemSample s;
    if (!sample(s)) return error_;
    return ok_status();
}

bool MeminfoReader::sample(MemSample& out) {
    ssize_t n = ::pread(fd_, buf_, sizeof buf_ - 1, 0);
    if (n < 0) {
        error_ = Error::sys(errno, path_);
        return false;
    }
    MeminfoParse r = parse_meminfo(std::string_view(buf_, static_cast<size_t>(n)), out);
    if (r != MeminfoParse::Ok) {
        error_ = Error::logic(path_ + ": " + describe(r));
        return false;
    }
    return true;
}

}  // namespace oomguard
