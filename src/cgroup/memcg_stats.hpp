// Memory numbers of one memory cgroup: usage, inactive_file, working set and
// limit. The parsers are pure; the reader uses kept fds and pread, and tells a
// vanished cgroup (ENOENT/ENODEV: pods die all the time) from a real error.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "cgroup/hierarchy.hpp"

namespace oomguard {

// Limits at or above this are "no limit": v1 reports PAGE_COUNTER_MAX pages
// (9223372036854771712 with 4 KiB pages), v2 writes "max".
constexpr uint64_t kUnlimitedLimit = 1ull << 62;

// "123\n" -> 123. False on anything else.
bool parse_u64_text(std::string_view text, uint64_t& out);
// "max", or a number: nullopt means unlimited. False when malformed.
bool parse_limit_text(std::string_view text, std::optional<uint64_t>& out);
// The value of `key` in memory.stat ("key value" lines). False when absent.
bool parse_stat_field(std::string_view stat, std::string_view key, uint64_t& out);

inline uint64_t working_set(uint64_t usage, uint64_t inactive_file) {
    return usage > inactive_file ? usage - inactive_file : 0;
}

enum class ReadStatus { Ok, Gone, Error };

// Reads a whole small file at offset 0 into buf (NUL not added). Gone for
// ENOENT/ENODEV (the cgroup was removed).
ReadStatus pread_file(int fd, char* buf, size_t cap, size_t& len);
ReadStatus read_at(int dirfd, const char* name, char* buf, size_t cap, size_t& len);

struct MemcgUsage {
    uint64_t usage = 0;
    uint64_t inactive_file = 0;
    uint64_t working_set() const { return oomguard::working_set(usage, inactive_file); }
};

// The two files the ranking reads, opened once from a cgroup dirfd.
class MemcgFiles {
public:
    MemcgFiles() = default;
    ~MemcgFiles() { close(); }
    MemcgFiles(MemcgFiles&& o) noexcept : usage_fd_(o.usage_fd_), stat_fd_(o.stat_fd_) {
        o.usage_fd_ = o.stat_fd_ = -1;
    }
    MemcgFiles& operator=(MemcgFiles&& o) noexcept;
    MemcgFiles(const MemcgFiles&) = delete;
    MemcgFiles& operator=(const MemcgFiles&) = delete;

    ReadStatus open(int dirfd, const CgroupHierarchy& h);
    bool is_open() const { return usage_fd_ >= 0; }
    void close();
    // buf: scratch space for memory.stat (8 KiB is plenty). No allocation.
    ReadStatus read(const CgroupHierarchy& h, char* buf, size_t cap, MemcgUsage& out) const;
    ReadStatus read_usage(uint64_t& usage) const;
    ReadStatus read_inactive_file(const CgroupHierarchy& h, char* buf, size_t cap,
                                  uint64_t& inactive) const;

private:
    int usage_fd_ = -1;
    int stat_fd_ = -1;
};

// One-shot reads from a dirfd (details for the few cgroups that are shown).
ReadStatus read_usage_at(int dirfd, const CgroupHierarchy& h, MemcgUsage& out);
ReadStatus read_usage_only_at(int dirfd, const CgroupHierarchy& h, uint64_t& usage);
ReadStatus read_inactive_file_at(int dirfd, const CgroupHierarchy& h, uint64_t& inactive);
// nullopt in `limit`: unlimited.
ReadStatus read_limit_at(int dirfd, const CgroupHierarchy& h, std::optional<uint64_t>& limit);
// v2 memory.oom.group: 0 or 1; -1 on v1 or when absent.
int read_oom_group_at(int dirfd, const CgroupHierarchy& h);

}  // namespace oomguard
