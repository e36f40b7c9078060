// Fuzzes parse_meminfo (the hot-path parser of /proc/meminfo). Invariants:
//  - no out-of-bounds read, whatever the bytes (ASan);
//  - when MemTotal, MemAvailable and SwapFree each appear at most once, the
//    result matches a plain reference parser written with std::string, values
//    included, with overflowing numbers rejected as malformed;
//  - reordering the lines does not change the result ("any order").
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "sensors/meminfo.hpp"

using namespace oomguard;

namespace {

struct Parsed {
    MeminfoParse status;
    MemSample sample;
};

std::vector<std::string> split_lines(std::string_view text) {
    std::vector<std::string> lines;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        lines.emplace_back(text.substr(0, nl));
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    }
    return lines;
}

// "   123 kB" -> bytes; nullopt when there is no number or it overflows.
std::optional<uint64_t> reference_value(const std::string& rest) {
    size_t i = rest.find_first_not_of(' ');
    if (i == std::string::npos) return std::nullopt;
    uint64_t v = 0;
    size_t start = i;
    for (; i < rest.size() && rest[i] >= '0' && rest[i] <= '9'; ++i) {
        if (__builtin_mul_overflow(v, 10u, &v) ||
            __builtin_add_overflow(v, uint64_t(rest[i] - '0'), &v))
            return std::nullopt;
    }
    if (i == start) return std::nullopt;
    i = rest.find_first_not_of(' ', i);
    if (i != std::string::npos && rest.compare(i, 2, "kB") == 0 &&
        __builtin_mul_overflow(v, 1024u, &v))
        return std::nullopt;
    return v;
}

// nullopt when a key we read is repeated (then the parser's choice is its own).
std::optional<Parsed> reference_parse(const std::vector<std::string>& lines) {
    Parsed p{MeminfoParse::Ok, {}};
    bool total = false, avail = false, swap = false, malformed = false;
    for (const auto& line : lines) {
        size_t colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string key = line.substr(0, colon);
        uint64_t* dst;
        bool* seen;
        if (key == "MemTotal")
            dst = &p.sample.mem_total, seen = &total;
        else if (key == "MemAvailable")
            dst = &p.sample.mem_available, seen = &avail;
        else if (key == "SwapFree")
            dst = &p.sample.swap_free, seen = &swap;
        else
            continue;
        if (*seen) return std::nullopt;
        *seen = true;
        auto v = reference_value(line.substr(colon + 1));
        if (!v)
            malformed = true;
        else
            *dst = *v;
    }
    p.status = malformed ? MeminfoParse::Malformed
               : !total  ? MeminfoParse::NoMemTotal
               : !avail  ? MeminfoParse::NoMemAvailable
                         : MeminfoParse::Ok;
    return p;
}

std::string show(MeminfoParse s, const MemSample& m) {
    return std::string(describe(s)) + " total=" + std::to_string(m.mem_total) +
           " avail=" + std::to_string(m.mem_available) + " swapfree=" + std::to_string(m.swap_free);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text = fuzz::as_text(data, size);
    MemSample got;
    const MeminfoParse status = parse_meminfo(text, got);
    FUZZ_CHECK(describe(status)[0] != '?', "unknown status");

    const std::vector<std::string> lines = split_lines(text);
    const std::optional<Parsed> want = reference_parse(lines);
    if (!want) return 0;
    const std::string what = fuzz::quote(text) + "\n  got  " + show(status, got) + "\n  want " +
                             show(want->status, want->sample);
    FUZZ_CHECK(status == want->status, what);
    if (status == MeminfoParse::Ok) {
        FUZZ_CHECK(got.mem_total == want->sample.mem_total &&
                       got.mem_available == want->sample.mem_available &&
                       got.swap_free == want->sample.swap_free,
                   what);
    }

    std::string reversed;
    for (auto it = lines.rbegin(); it != lines.rend(); ++it) reversed += *it + "\n";
    MemSample rev;
    const MeminfoParse rev_status = parse_meminfo(reversed, rev);
    FUZZ_CHECK(rev_status == status, what + "\n  reversed lines give " + show(rev_status, rev));
    if (status == MeminfoParse::Ok)
        FUZZ_CHECK(rev.mem_total == got.mem_total && rev.mem_available == got.mem_available &&
                       rev.swap_free == got.swap_free,
                   what + "\n  reversed lines give " + show(rev_status, rev));
    return 0;
}
