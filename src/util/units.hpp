// Parsing and formatting of the config's unit-bearing strings:
// sizes ("350MiB", "2GiB", "512KiB", "1G"), percentages ("5%"), durations
// ("500ms", "2s", "1min") and rates ("4GiB/s").
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace oomguard {

using Duration = std::chrono::nanoseconds;

// A memory level: either absolute bytes or a percentage of MemTotal.
struct SizeOrPercent {
    bool is_percent = false;
    uint64_t bytes = 0;     // valid when !is_percent
    double percent = 0.0;   // (0, 100) when is_percent

    uint64_t resolve(uint64_t mem_total) const {
        return is_percent ? static_cast<uint64_t>(static_cast<double>(mem_total) * percent / 100.0)
                          : bytes;
    }
    std::string to_string() const;         // for people: "5.1 GiB", "5%"
    std::string to_config_string() const;  // exact: parses back to the same value
    bool operator==(const SizeOrPercent&) const = default;
};

Result<uint64_t> parse_size(std::string_view text);
Result<SizeOrPercent> parse_size_or_percent(std::string_view text);
Result<Duration> parse_duration(std::string_view text);
// Bytes per second, written as a size followed by "/s".
Result<uint64_t> parse_rate(std::string_view text);

// "5.1 GiB", "350 MiB", "812 KiB", "17 B".
std::string format_bytes(uint64_t bytes);
// Writes the same into buf without allocating; returns the length.
size_t format_bytes(uint64_t bytes, char* buf, size_t cap);
// "1s", "250ms", "1.5s", "3min 2s".
std::string format_duration(Duration d);

// Exact forms for writing a config back (--check-config): the largest unit that
// divides the value, so parse_size/parse_duration give back the same value.
// "350 MiB", "1000001 B"; "1500us", "2min".
std::string render_size(uint64_t bytes);
std::string render_duration(Duration d);

}  // namespace oomguard
