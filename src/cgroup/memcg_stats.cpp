#include "cgroup/memcg_stats.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace oomguard {

bool parse_u64_text(std::string_view text, uint64_t& out) {
    size_t i = 0;
    uint64_t v = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
        uint64_t d = static_cast<uint64_t>(text[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;  // overflow
        v = v * 10 + d;
        ++i;
    }
    if (i == 0) return false;
    while (i < text.size() && (text[i] == '\n' || text[i] == ' ')) ++i;
    if (i != text.size()) return false;
    out = v;
    return true;
}

bool parse_limit_text(std::string_view text, std::optional<uint64_t>& out) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
    if (text == "max") {
        out.reset();
        return true;
    }
    uint64_t v;
    if (!parse_u64_text(text, v)) return false;
    if (v >= kUnlimitedLimit)
        out.reset();
    else
        out = v;
    return true;
}

bool parse_stat_field(std::string_view stat, std::string_view key, uint64_t& out) {
    size_t pos = 0;
    while (pos < stat.size()) {
        size_t nl = stat.find('\n', pos);
        if (nl == std::string_view::npos) nl = stat.size();
        std::string_view line = stat.substr(pos, nl - pos);
        pos = nl + 1;
        if (line.size() > key.size() && line.substr(0, key.size()) == key &&
            line[key.size()] == ' ')
            return parse_u64_text(line.substr(key.size() + 1), out);
    }
    return false;
}

ReadStatus pread_file(int fd, char* buf, size_t cap, size_t& len) {
    ssize_t n;
    do n = ::pread(fd, buf, cap, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) return (errno == ENODEV || errno == ENOENT) ? ReadStatus::Gone : ReadStatus::Error;
    len = static_cast<size_t>(n);
    return ReadStatus::Ok;
}

ReadStatus read_at(int dirfd, const char* name, char* buf, size_t cap, size_t& len) {
    int fd = ::openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return (errno == ENODEV || errno == ENOENT) ? ReadStatus::Gone : ReadStatus::Error;
    ReadStatus st = pread_file(fd, buf, cap, len);
    ::close(fd);
    return st;
}

MemcgFiles& MemcgFiles::operator=(MemcgFiles&& o) noexcept {
    if (this != &o) {
        close();
        usage_fd_ = o.usage_fd_;
        stat_fd_ = o.stat_fd_;
        o.usage_fd_ = o.stat_fd_ = -1;
    }
    return *this;
}

void MemcgFiles::close() {
    if (usage_fd_ >= 0) ::close(usage_fd_);
    if (stat_fd_ >= 0) ::close(stat_fd_);
    usage_fd_ = stat_fd_ = -1;
}

ReadStatus MemcgFiles::open(int dirfd, const CgroupHierarchy& h) {
    close();
    int u = ::openat(dirfd, h.usage_file(), O_RDONLY | O_CLOEXEC);
    if (u < 0) return (errno == ENODEV || errno == ENOENT) ? ReadStatus::Gone : ReadStatus::Error;
    int s = ::openat(dirfd, "memory.stat", O_RDONLY | O_CLOEXEC);
    if (s < 0) {
        int err = errno;
        ::close(u);
        return (err == ENODEV || err == ENOENT) ? ReadStatus::Gone : ReadStatus::Error;
    }
    usage_fd_ = u;
    stat_fd_ = s;
    return ReadStatus::Ok;
}

namespace {

ReadStatus parse_usage(const CgroupHierarchy& h, std::string_view usage_text,
                       std::string_view stat_text, MemcgUsage& out) {
    uint64_t usage = 0, inactive = 0;
    if (!parse_u64_text(usage_text, usage)) return ReadStatus::Error;
    // Missing inactive_file (very old kernels): count it all as working set.
    if (!parse_stat_field(stat_text, h.inactive_file_key(), inactive)) inactive = 0;
    out.usage = usage;
    out.inactive_file = inactive;
    return ReadStatus::Ok;
}

}  // namespace

ReadStatus MemcgFiles::read(const CgroupHierarchy& h, char* buf, size_t cap,
                            MemcgUsage& out) const {
    if (usage_fd_ < 0) return ReadStatus::Error;
    char ubuf[32];
    size_t ulen = 0, slen = 0;
    if (ReadStatus st = pread_file(usage_fd_, ubuf, sizeof ubuf, ulen); st != ReadStatus::Ok)
        return st;
    if (ReadStatus st = pread_file(stat_fd_, buf, cap, slen); st != ReadStatus::Ok) return st;
    return parse_usage(h, std::string_view(ubuf, ulen), std::string_view(buf, slen), out);
}

ReadStatus MemcgFiles::read_usage(uint64_t& usage) const {
    if (usage_fd_ < 0) return ReadStatus::Error;
    char ubuf[32];
    size_t len = 0;
    if (ReadStatus st = pread_file(usage_fd_, ubuf, sizeof ubuf, len); st != ReadStatus::Ok)
        return st;
    return parse_u64_text(std::string_view(ubuf, len), usage) ? ReadStatus::Ok : ReadStatus::Error;
}

ReadStatus MemcgFiles::read_inactive_file(const CgroupHierarchy& h, char* buf, size_t cap,
                                          uint64_t& inactive) const {
    if (stat_fd_ < 0) return ReadStatus::Error;
    size_t len = 0;
    if (ReadStatus st = pread_file(stat_fd_, buf, cap, len); st != ReadStatus::Ok) return st;
    if (!parse_stat_field(std::string_view(buf, len), h.inactive_file_key(), inactive))
        inactive = 0;
    return ReadStatus::Ok;
}

ReadStatus read_usage_only_at(int dirfd, const CgroupHierarchy& h, uint64_t& usage) {
    char ubuf[32];
    size_t len = 0;
    if (ReadStatus st = read_at(dirfd, h.usage_file(), ubuf, sizeof ubuf, len);
        st != ReadStatus::Ok)
        return st;
    return parse_u64_text(std::string_view(ubuf, len), usage) ? ReadStatus::Ok : ReadStatus::Error;
}

ReadStatus read_inactive_file_at(int dirfd, const CgroupHierarchy& h, uint64_t& inactive) {
    char sbuf[8192];
    size_t len = 0;
    if (ReadStatus st = read_at(dirfd, "memory.stat", sbuf, sizeof sbuf, len); st != ReadStatus::Ok)
        return st;
    if (!parse_stat_field(std::string_view(sbuf, len), h.inactive_file_key(), inactive))
        inactive = 0;
    return ReadStatus::Ok;
}

ReadStatus read_usage_at(int dirfd, const CgroupHierarchy& h, MemcgUsage& out) {
    char ubuf[32];
    char sbuf[8192];
    size_t ulen = 0, slen = 0;
    if (ReadStatus st = read_at(dirfd, h.usage_file(), ubuf, sizeof ubuf, ulen);
        st != ReadStatus::Ok)
        return st;
    if (ReadStatus st = read_at(dirfd, "memory.stat", sbuf, sizeof sbuf, slen);
        st != ReadStatus::Ok)
        return st;
    return parse_usage(h, std::string_view(ubuf, ulen), std::string_view(sbuf, slen), out);
}

ReadStatus read_limit_at(int dirfd, const CgroupHierarchy& h, std::optional<uint64_t>& limit) {
    char buf[32];
    size_t len = 0;
    if (ReadStatus st = read_at(dirfd, h.limit_file(), buf, sizeof buf, len); st != ReadStatus::Ok)
        return st;
    return parse_limit_text(std::string_view(buf, len), limit) ? ReadStatus::Ok : ReadStatus::Error;
}

int read_oom_group_at(int dirfd, const CgroupHierarchy& h) {
    if (h.version != CgroupVersion::V2) return -1;
    char buf[8];
    size_t len = 0;
    if (read_at(dirfd, "memory.oom.group", buf, sizeof buf, len) != ReadStatus::Ok) return -1;
    uint64_t v;
    if (!parse_u64_text(std::string_view(buf, len), v) || v > 1) return -1;
    return static_cast<int>(v);
}

}  // namespace oomguard
