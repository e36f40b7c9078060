#include "util/units.hpp"

#include <cmath>
#include <cstdio>
#include <limits>

namespace oomguard {
namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Splits "12.5MiB" into 12.5 and "MiB". Rejects signs, exponents and empty numbers.
Result<std::pair<double, std::string_view>> split_number(std::string_view text,
                                                         std::string_view what) {
    std::string_view s = trim(text);
    if (s.empty()) return Error::logic("empty " + std::string(what));
    if (s.front() == '-') return Error::logic(std::string(what) + " must not be negative: \"" +
                                              std::string(text) + "\"");
    size_t i = 0;
    bool digits = false, dot = false;
    double int_part = 0, frac = 0, scale = 1;
    for (; i < s.size(); ++i) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            digits = true;
            if (dot) {
                scale /= 10;
                frac += (c - '0') * scale;
            } else {
                int_part = int_part * 10 + (c - '0');
            }
        } else if (c == '.' && !dot) {
            dot = true;
        } else {
            break;
        }
    }
    if (!digits)
        return Error::logic("\"" + std::string(text) + "\" is not a " + std::string(what));
    std::string_view unit = trim(s.substr(i));
    return std::pair<double, std::string_view>{int_part + frac, unit};
}

struct UnitScale {
    std::string_view name;
    double factor;
};

constexpr UnitScale kSizeUnits[] = {
    {"B", 1.0},
    {"K", 1024.0}, {"KB", 1024.0}, {"KiB", 1024.0}, {"k", 1024.0},
    {"M", 1048576.0}, {"MB", 1048576.0}, {"MiB", 1048576.0},
    {"G", 1073741824.0}, {"GB", 1073741824.0}, {"GiB", 1073741824.0},
    {"T", 1099511627776.0}, {"TB", 1099511627776.0}, {"TiB", 1099511627776.0},
};

constexpr UnitScale kDurationUnits[] = {
    {"ns", 1e-9}, {"us", 1e-6}, {"µs", 1e-6}, {"ms", 1e-3},
    {"s", 1.0}, {"sec", 1.0}, {"min", 60.0}, {"h", 3600.0},
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
            if (bytes > static_cast<double>(std::numeric_limits<int64_t>::max()))
                return Error::logic("size \"" + std::string(text) + "\" is too large");
            return static_cast<uint64_t>(std::llround(bytes));
        }
    }
    return Error::logic("size \"" + std::string(text) + "\" has an unknown unit \"" +
                        std::string(unit) + "\" (use B, KiB, MiB, GiB or TiB)");
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
            double ns = number * u.factor * 1e9;
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

size_t format_bytes(uint64_t bytes, char* buf, size_t cap) {
    static constexpr const char* kNames[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(bytes);
    int i = 0;
    while (v >= 1024.0 && i < 4) {
        v /= 1024.0;
        ++i;
    }
    int n;
    if (i == 0)
        n = std::snprintf(buf, cap, "%llu B", static_cast<unsigned long long>(bytes));
    else if (v < 10.0)
        n = std::snprintf(buf, cap, "%.1f %s", v, kNames[i]);
    else
        n = std::snprintf(buf, cap, "%.0f %s", v, kNames[i]);
    if (n < 0) return 0;
    return static_cast<size_t>(n) < cap ? static_cast<size_t>(n) : cap - 1;
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

std::string SizeOrPercent::to_string() const {
    if (is_percent) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%g%%", percent);
        return buf;
    }
    return format_bytes(bytes);
}

}  // namespace oomguard
