// The daemon's structured stderr lines, as the tests read them: an entry is
// "<prio>event: message ... FIELD=value ..." and any lines that follow it up
// to the next "<N>" line (a multi-line message).
#pragma once

#include <string>
#include <vector>

namespace oomguard::test {

// The daemon's stderr line for the end of a triggered episode (Event::Recovered).
inline constexpr const char* kRecoveredEntry = "<5>recovered: MemAvailable ";

// The value of FIELD=value in an entry ("" when absent).
std::string field(const std::string& entry, const std::string& name);
// Splits captured output into entries.
std::vector<std::string> split_entries(const std::string& text);
// True when the entry is of this event ("trigger", "heaviest", ...) and
// contains `needle` (when not empty).
bool is_event(const std::string& entry, const std::string& event, const std::string& needle = "");

}  // namespace oomguard::test
