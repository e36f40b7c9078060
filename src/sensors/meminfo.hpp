// MemAvailable/MemTotal from <proc>/meminfo: one kept fd, pread, no allocation.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/mem_sample.hpp"
#include "util/result.hpp"

namespace oomguard {

// Parses the text of /proc/meminfo. Fields may come in any order; MemTotal and
// MemAvailable are required (kernels before 3.14 have no MemAvailable).
// Writes the missing field's name into the error message via a static string so
// the hot path does not allocate on success.
enum class MeminfoParse { Ok, NoMemTotal, NoMemAvailable, Malformed };
MeminfoParse parse_meminfo(std::string_view text, MemSample& out);
const char* describe(MeminfoParse p);

class MeminfoReader {
public:
    MeminfoReader() = default;
    ~MeminfoReader();
    MeminfoReader(const MeminfoReader&) = delete;
    MeminfoReader& operator=(const MeminfoReader&) = delete;

    // Opens <proc_root>/meminfo and checks that it parses.
    Status open(const std::string& proc_root);
    // Hot path: pread + parse into `out`. Returns false on failure; then
    // last_error() says why (allocates only on failure).
    bool sample(MemSample& out);
    const Error& last_error() const { return error_; }
    const std::string& path() const { return path_; }

private:
    int fd_ = -1;
    std::string path_;
    Error error_;
    char buf_[16384];
};

}  // namespace oomguard
