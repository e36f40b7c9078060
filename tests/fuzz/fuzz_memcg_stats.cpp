// Fuzzes the memory cgroup file parsers (parse_u64_text, parse_limit_text,
// parse_stat_field). Invariants:
//  - parse_u64_text agrees with a plain reference (digits, then only blanks and
//    newlines; overflow rejected), and an accepted value prints back to its digits;
//  - parse_limit_text: "max" and values >= kUnlimitedLimit are unlimited,
//    otherwise it is parse_u64_text of the trimmed text;
//  - parse_stat_field agrees with a std::string reference (the first line that
//    starts with "<key> ") for the keys the ranking reads and for the input's
//    own first key;
//  - when that key appears once, reversing the lines does not change the result.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cgroup/memcg_stats.hpp"
#include "fuzz_check.hpp"

using namespace oomguard;

namespace {

std::optional<uint64_t> reference_u64(const std::string& s) {
    size_t end = s.find_first_not_of("0123456789");
    if (end == std::string::npos) end = s.size();
    if (end == 0) return std::nullopt;
    if (s.find_first_not_of(" \n", end) != std::string::npos) return std::nullopt;
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + end, v);
    if (ec != std::errc() || p != s.data() + end) return std::nullopt;
    return v;
}

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string::npos) nl = text.size();
        lines.push_back(text.substr(pos, nl - pos));
        pos = nl + 1;
    }
    return lines;
}

// nullopt: absent or malformed (the parser returns false for both).
std::optional<uint64_t> reference_stat(const std::vector<std::string>& lines,
                                       const std::string& key, int* count) {
    std::optional<uint64_t> first;
    bool found = false;
    *count = 0;
    for (const auto& line : lines) {
        if (line.size() > key.size() && line.compare(0, key.size(), key) == 0 &&
            line[key.size()] == ' ') {
            ++*count;
            if (!found) first = reference_u64(line.substr(key.size() + 1));
            found = true;
        }
    }
    return first;
}

void check_stat(const std::string& text, const std::vector<std::string>& lines,
                const std::string& key) {
    uint64_t got = 0;
    const bool ok = parse_stat_field(text, key, got);
    int count = 0;
    const std::optional<uint64_t> want = reference_stat(lines, key, &count);
    const std::string what = "key " + fuzz::quote(key) + " in " + fuzz::quote(text) + ": got " +
                             (ok ? std::to_string(got) : "none") + ", want " +
                             (want ? std::to_string(*want) : "none");
    FUZZ_CHECK(ok == want.has_value(), what);
    if (ok) FUZZ_CHECK(got == *want, what);
    if (count != 1) return;
    std::string reversed;
    for (auto it = lines.rbegin(); it != lines.rend(); ++it) reversed += *it + "\n";
    uint64_t rev = 0;
    const bool rev_ok = parse_stat_field(reversed, key, rev);
    FUZZ_CHECK(rev_ok == ok && (!ok || rev == got), what + " (reversed lines differ)");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text = fuzz::as_text(data, size);
    const std::string s(text);

    uint64_t v = 0;
    const bool ok = parse_u64_text(text, v);
    const std::optional<uint64_t> want = reference_u64(s);
    FUZZ_CHECK(ok == want.has_value() && (!ok || v == *want), fuzz::quote(text));
    if (ok) {
        // The digits, without leading zeros, are the value printed.
        std::string digits = s.substr(0, s.find_first_not_of("0123456789"));
        digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size() - 1));
        FUZZ_CHECK(digits == std::to_string(v), fuzz::quote(text) + " -> " + std::to_string(v));
    }

    std::optional<uint64_t> limit;
    const bool lok = parse_limit_text(text, limit);
    std::string trimmed = s;
    while (!trimmed.empty() && (trimmed.back() == '\n' || trimmed.back() == ' '))
        trimmed.pop_back();
    if (trimmed == "max") {
        FUZZ_CHECK(lok && !limit, fuzz::quote(text));
    } else {
        const std::optional<uint64_t> n = reference_u64(trimmed);
        FUZZ_CHECK(lok == n.has_value(), fuzz::quote(text));
        if (lok)
            FUZZ_CHECK(*n >= kUnlimitedLimit ? !limit : (limit && *limit == *n), fuzz::quote(text));
    }

    const std::vector<std::string> lines = split_lines(s);
    check_stat(s, lines, "inactive_file");
    check_stat(s, lines, "total_inactive_file");
    if (!lines.empty()) {
        const std::string& l = lines.front();
        check_stat(s, lines, l.substr(0, l.find(' ')));
    }
    return 0;
}
