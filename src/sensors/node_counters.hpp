// Node-wide kernel counters for the metrics: the oom_kill count of
// <proc>/vmstat and the stall totals of <proc>/pressure/memory. Read at the
// metrics' cadence (open, read, close), never on the sampling hot path.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace oomguard {

// The value of `key` in /proc/vmstat text ("key value" lines).
Result<uint64_t> parse_vmstat_field(std::string_view text, std::string_view key);

// PSI memory stall totals, in microseconds since boot, as the kernel counts
// them (the total= fields; node_exporter exports the same figures in seconds).
struct PressureTotals {
    uint64_t some_us = 0;  // some task stalled on memory
    uint64_t full_us = 0;  // all non-idle tasks stalled at once
    bool has_full = false;
};

class NodeCounters {
public:
    explicit NodeCounters(std::string proc_root = "") : proc_root_(std::move(proc_root)) {}
    void set_proc_root(std::string proc_root) { proc_root_ = std::move(proc_root); }
    const std::string& proc_root() const { return proc_root_; }

    // oom_kill of <proc>/vmstat (Linux 4.13+): every OOM kill since boot.
    Result<uint64_t> oom_kills() const;
    // <proc>/pressure/memory (Linux 4.20+ with PSI enabled).
    Result<PressureTotals> memory_pressure() const;

private:
    std::string proc_root_;
};

}  // namespace oomguard
