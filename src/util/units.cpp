#include "util/units.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

namespace oomguard {
namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Splits "12.5MiB" into 12.5 and "MiB". Rejects signs, exponents and empty numbers.
// The number is converted with from_chars (correctly rounded), so an exact
// rendering of a value (render_size, render_duration) parses back to it.
Result<std::pair<double, std::string_view>> split_number(std::string_view text,
                                                         std::string_view what) {
    std::string_view s = trim(text);
    if (s.empty()) return Error::logic("empty " + std::string(what));
    if (s.front() == '-') return Error::logic(std::string(what) + " must not be negative: \"" +
                                              std::string(text) + "\"");
    size_t i = 0;
    bool digits = false, dot = false, nonzero_int = false;
    for (; i < s.size(); ++i) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            digits = true;
            if (!dot && c != '0') nonzero_int = true;
        } else if (c == '.' && !dot) {
            dot = true;
        } else {
            break;
        }
    }
    if (!digits)
        return Error::logic("\"" + std::string(text) + "\" is not a " + std::string(what));
    double number = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + i, number, std::chars_format::fixed);
    if (ec == std::errc::result_out_of_range) {
        if (nonzero_int)
            return Error::logic(std::string(what) + " \"" + std::string(text) + "\" is too large");
        number = 0;  // too small to be anything but zero
    } else if (ec != std::errc() || end != s.data() + i) {
        return Error::logic("\"" + std::string(text) + "\" is not a " + std::string(what));
    }
    std::string_view unit = trim(s.substr(i));
    return std::pair<double, std::string_view>{number, unit};
}

struct UnitScale {
    std::string_view name;
    double factor;
};

// All powers of 1024. "kB" is /proc/meminfo's own unit (it means KiB), and
// "Ki"/"Mi"/"Gi"/"Ti" are Kubernetes' binary suffixes. The single letters and
// xB forms stay binary as in systemd (MemoryMax=2G) and as they always were here;
// Kubernetes' decimal suffixes (k = 1000, M = 10^6, G = 10^9) are therefore
// read 2.4-10% larger (an earlier trigger), which oomguard.toml(5) says.
constexpr UnitScale kSizeUnits[] = {
    {"B", 1.0},
    {"K", 1024.0},
    {"KB", 1024.0},
    {"KiB", 1024.0},
    {"k", 1024.0},
    {"kB", 1024.0},
    {"Ki", 1024.0},
    {"M", 1048576.0},
    {"MB", 1048576.0},
    {"MiB", 1048576.0},
    {"Mi", 1048576.0},
    {"G", 1073741824.0},
    {"GB", 1073741824.0},
    {"GiB", 1073741824.0},
    {"Gi", 1073741824.0},
    {"T", 1099511627776.0},
    {"TB", 1099511627776.0},
    {"TiB", 1099511627776.0},
    {"Ti", 1099511627776.0},
};

// Nanoseconds per unit: integers, exact as doubles, so one multiplication is
// the only rounding.
constexpr UnitScale kDurationUnits[] = {
    {"ns", 1.0}, {"us", 1e3},  {"µs", 1e3},   {"ms", 1e6},
    {"s", 1e9},  {"sec", 1e9}, {"min", 60e9}, {"h", 3600e9},
};

}  // namespace

Result<uint64_t> parse_size(std::string_view text) {
    auto split = split_number(text, "size");
    if (!split) return split.error();
    auto [number, unit] = *split;
    if (unit.empty())
        return Error::logic("size \"" + std::string(text) +
                            "\" has no unit; write bytes with a unit, e.g. \"350MiB\" or \"2GiB\"");
    for (const auto& u : kSizeUnits) {
        if (u.name == unit) {
            double bytes = number * u.factor;
            // 2^63 itself is out of range: int64 max is not a double, and it rounds up.
            if (bytes >= static_cast<double>(std::numeric_limits<int64_t>::max()))
                return Error::logic("size \"" + std::string(text) + "\" is too large");
            return static_cast<uint64_t>(std::llround(bytes));
        }
    }
    return Error::logic("size \"" + std::string(text) + "\" has an unknown unit \"" +
                        std::string(unit) +
                        "\" (use B, KiB, MiB, GiB or TiB; kB and Ki/Mi/Gi/Ti also work)");
}

Result<SizeOrPercent> parse_size_or_percent(std::string_view text) {
    std::string_view s = trim(text);
    if (!s.empty() && s.back() == '%') {
        auto split = split_number(s.substr(0, s.size() - 1), "percentage");
        if (!split) return split.error();
        if (!split->second.empty())
            return Error::logic("\"" + std::string(text) + "\" is not a percentage");
        double p = split->first;
        if (!(p > 0.0 && p < 100.0))
            return Error::logic("percentage \"" + std::string(text) +
                                "\" must be between 0% and 100% (exclusive)");
        SizeOrPercent r;
        r.is_percent = true;
        r.percent = p;
        return r;
    }
    auto bytes = parse_size(text);
    if (!bytes) {
        auto split = split_number(text, "size");
        if (split && split->second.empty())
            return Error::logic("\"" + std::string(text) +
                                "\" has no unit; write a size such as \"350MiB\" or a "
                                "percentage of MemTotal such as \"5%\"");
        return bytes.error();
    }
    SizeOrPercent r;
    r.bytes = *bytes;
    return r;
}

Result<Duration> parse_duration(std::string_view text) {
    auto split = split_number(text, "duration");
    if (!split) return split.error();
    auto [number, unit] = *split;
    if (unit.empty())
        return Error::logic("duration \"" + std::string(text) +
                            "\" has no unit; write e.g. \"500ms\" or \"2s\"");
    for (const auto& u : kDurationUnits) {
        if (u.name == unit) {
            double ns = number * u.factor;
            if (ns > 1e18) return Error::logic("duration \"" + std::string(text) + "\" is too long");
            return Duration(static_cast<int64_t>(std::llround(ns)));
        }
    }
    return Error::logic("duration \"" + std::string(text) + "\" has an unknown unit \"" +
                        std::string(unit) + "\" (use ms, s, min or h)");
}

Result<uint64_t> parse_rate(std::string_view text) {
    std::string_view s = trim(text);
    if (s.size() < 2 || s.substr(s.size() - 2) != "/s")
        return Error::logic("rate \"" + std::string(text) +
                            "\" must be a size per second, e.g. \"4GiB/s\"");
    return parse_size(s.substr(0, s.size() - 2));
}

namespace {

// bytes / 2^shift rounded to the nearest integer, ties to even: what printf's
// "%.0f" makes of the (exact) double bytes / 2^shift.
uint64_t round_shift(unsigned __int128 v, unsigned shift) {
    if (shift == 0) return static_cast<uint64_t>(v);
    const unsigned __int128 q = v >> shift,
                            r = v & ((static_cast<unsigned __int128>(1) << shift) - 1),
                            half = static_cast<unsigned __int128>(1) << (shift - 1);
    return static_cast<uint64_t>(q + ((r > half || (r == half && (q & 1))) ? 1 : 0));
}

size_t put_u64(uint64_t v, char* out) {
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; ++i) out[i] = tmp[n - 1 - i];
    return n;
}

}  // namespace

size_t format_bytes(uint64_t bytes, char* buf, size_t cap) {
    // Integer arithmetic, the same text as "%.1f %s" / "%.0f %s" of the double
    // (the status line formats two of these on every idle wakeup: printf's
    // floating-point code was a good part of its cost, issue 17).
    static constexpr const char* kNames[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    unsigned i = 0;
    while (i < 4 && bytes >> (10 * i) >= 1024) ++i;
    const unsigned shift = 10 * i;
    char out[48];
    size_t n;
    if (i == 0) {
        n = put_u64(bytes, out);
    } else if (bytes >> shift < 10) {
        const uint64_t tenths = round_shift(static_cast<unsigned __int128>(bytes) * 10, shift);
        n = put_u64(tenths / 10, out);
        out[n++] = '.';
        out[n++] = static_cast<char>('0' + tenths % 10);
    } else {
        n = put_u64(round_shift(bytes, shift), out);
    }
    out[n++] = ' ';
    for (const char* s = kNames[i]; *s; ++s) out[n++] = *s;
    if (cap == 0) return 0;
    const size_t len = n < cap ? n : cap - 1;
    std::memcpy(buf, out, len);
    buf[len] = '\0';
    return len;
}

std::string format_bytes(uint64_t bytes) {
    char buf[32];
    size_t n = format_bytes(bytes, buf, sizeof buf);
    return std::string(buf, n);
}

std::string format_duration(Duration d) {
    using namespace std::chrono;
    char buf[48];
    int64_t ns = d.count();
    if (ns < 0) ns = 0;
    if (ns < 1'000'000)
        std::snprintf(buf, sizeof buf, "%lldus", static_cast<long long>(ns / 1000));
    else if (ns < 1'000'000'000)
        std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ns / 1'000'000));
    else if (ns < 60'000'000'000LL)
        std::snprintf(buf, sizeof buf, "%.3gs", static_cast<double>(ns) / 1e9);
    else
        std::snprintf(buf, sizeof buf, "%lldmin %llds", static_cast<long long>(ns / 60'000'000'000LL),
                      static_cast<long long>((ns / 1'000'000'000) % 60));
    return buf;
}

std::string render_size(uint64_t bytes) {
    static constexpr const char* kNames[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    uint64_t v = bytes;
    while (v != 0 && v % 1024 == 0 && i < 4) {
        v /= 1024;
        ++i;
    }
    return std::to_string(v) + " " + kNames[i];
}

std::string render_duration(Duration d) {
    static constexpr std::pair<int64_t, const char*> kUnits[] = {
        {3'600'000'000'000LL, "h"}, {60'000'000'000LL, "min"}, {1'000'000'000LL, "s"},
        {1'000'000LL, "ms"},        {1'000LL, "us"},
    };
    const int64_t ns = d.count();
    if (ns == 0) return "0s";
    for (const auto& [per, name] : kUnits)
        if (ns % per == 0) return std::to_string(ns / per) + name;
    return std::to_string(ns) + "ns";
}

std::string SizeOrPercent::to_config_string() const {
    if (!is_percent) return render_size(bytes);
    // The shortest fixed-point form that parses back to the same double.
    char buf[512];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf - 1, percent, std::chars_format::fixed);
    if (ec != std::errc()) return to_string();
    *end++ = '%';
    return std::string(buf, end);
}

std::string SizeOrPercent::to_string() const {
    if (is_percent) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%g%%", percent);
        return buf;
    }
    return format_bytes(bytes);
}

}  // namespace oomguard
