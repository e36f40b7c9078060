// The config against a host: levels that cannot fit its MemTotal, and each
// level as the host resolves it (--check-config).
#include <cstdio>

#include "config/config.hpp"
#include "sensors/meminfo.hpp"

namespace oomguard {

std::vector<ConfigError> check_against_mem_total(const Config& c, uint64_t mem_total) {
    std::vector<ConfigError> errors;
    auto check = [&](const char* key, const std::optional<SizeOrPercent>& v, const char* why) {
        if (!v || v->is_percent || v->bytes < mem_total) return;
        auto it = c.key_origins.find(key);
        const bool known = it != c.key_origins.end();
        errors.push_back(
            ConfigError{key, known ? it->second.line : 0,
                        "(" + v->to_string() + ") is at or above this node's MemTotal (" +
                            format_bytes(mem_total) + ", " + std::to_string(mem_total) +
                            " bytes): MemAvailable never gets there, so " + why +
                            "; use a smaller size or a percentage",
                        known ? it->second.file : c.source_path});
    };
    check("memory.min_available", c.memory.min_available, "oomguard would act on a healthy node");
    check("memory.warn_available", c.memory.warn_available, "it would warn on a healthy node");
    check("memory.recover_available", c.memory.recover_available, "an episode would never end");
    return errors;
}

HostCheck check_against_host(const Config& c, const std::string& proc_root) {
    HostCheck out;
    MeminfoReader meminfo;
    MemSample s;
    if (Status st = meminfo.open(proc_root); !st) {
        out.note = "levels not checked against MemTotal: " + st.error().message;
        return out;
    }
    if (!meminfo.sample(s)) {
        out.note = "levels not checked against MemTotal: " + meminfo.last_error().message;
        return out;
    }
    out.mem_total = s.mem_total;
    out.errors = check_against_mem_total(c, s.mem_total);
    out.note = "levels checked against this host's MemTotal (" + format_bytes(s.mem_total) + ", " +
               meminfo.path() + ")";
    return out;
}

namespace {

std::string percent_of(uint64_t bytes, uint64_t mem_total) {
    char buf[32];
    const double pct =
        mem_total ? 100.0 * static_cast<double>(bytes) / static_cast<double>(mem_total) : 0;
    std::snprintf(buf, sizeof buf, pct < 10 ? "%.1f%%" : "%.0f%%", pct);
    return buf;
}

}  // namespace

ResolvedLevels describe_levels(const Config& c, uint64_t mem_total, uint64_t min, uint64_t warn,
                               uint64_t recover) {
    ResolvedLevels out;
    const std::string of = " of MemTotal " + format_bytes(mem_total);
    // "5% = 1.2 GiB of MemTotal 24 GiB" or "350 MiB = 1.4% of MemTotal 24 GiB".
    auto level = [&](const char* key, const SizeOrPercent& v, uint64_t resolved) {
        return std::string("# ") + key + " = " +
               (v.is_percent ? v.to_string() + " = " + format_bytes(resolved)
                             : format_bytes(resolved) + " = " + percent_of(resolved, mem_total)) +
               of;
    };
    out.lines.push_back(level("min_available", c.memory.min_available, min));
    if (c.memory.warn_available) {
        if (warn)
            out.lines.push_back(level("warn_available", *c.memory.warn_available, warn));
        else
            out.lines.push_back("# warn_available = " + c.memory.warn_available->to_string() +
                                ": at or below min_available on this host, so no warning level");
    } else {
        out.lines.push_back("# warn_available: unset, no warning level");
    }
    if (c.memory.recover_available)
        out.lines.push_back(level("recover_available", *c.memory.recover_available, recover));
    else
        out.lines.push_back(std::string("# recover_available: unset: ") +
                            (warn ? "warn_available" : "2 x min_available") + " = " +
                            format_bytes(recover) + of);
    if (mem_total &&
        static_cast<double>(min) > static_cast<double>(mem_total) * kHighLevelPercent / 100.0)
        out.warnings.push_back(
            "memory.min_available (" +
            (c.memory.min_available.is_percent ? c.memory.min_available.to_string() + " = " : "") +
            format_bytes(min) + ") is " + percent_of(min, mem_total) + of +
            ": oomguard will kill while that much memory is still available; kubelet's eviction "
            "should act first and oomguard be the backstop (see \"Choosing the threshold\" in the "
            "README)");
    return out;
}

}  // namespace oomguard
