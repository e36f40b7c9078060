// Invariant checks for the libFuzzer targets: a failed check prints what was
// expected and the input's interpretation, then aborts so libFuzzer saves the
// input as a crash artifact.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace oomguard::fuzz {

[[noreturn]] inline void fail(const char* expr, const char* file, int line,
                              const std::string& detail) {
    std::fprintf(stderr, "%s:%d: invariant failed: %s\n  %s\n", file, line, expr, detail.c_str());
    std::abort();
}

inline std::string_view as_text(const uint8_t* data, size_t size) {
    return std::string_view(reinterpret_cast<const char*>(data), size);
}

// Printable form of fuzzer input for failure messages.
inline std::string quote(std::string_view s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        }
    }
    return out + "\"";
}

}  // namespace oomguard::fuzz

#define FUZZ_CHECK(cond, detail)                                                  \
    do {                                                                          \
        if (!(cond)) ::oomguard::fuzz::fail(#cond, __FILE__, __LINE__, (detail)); \
    } while (0)
