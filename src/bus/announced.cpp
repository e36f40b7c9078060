#include "bus/announced.hpp"

#include <array>

namespace oomguard {

namespace {

const std::array<AnnouncedProperty, 15> kProperties = {{
    {"Threshold",
     [](const DaemonState& a, const DaemonState& b) { return a.levels.min != b.levels.min; }},
    {"WarnThreshold",
     [](const DaemonState& a, const DaemonState& b) { return a.levels.warn != b.levels.warn; }},
    {"State", [](const DaemonState& a, const DaemonState& b) { return a.state != b.state; }},
    {"Mode", [](const DaemonState& a, const DaemonState& b) { return a.mode != b.mode; }},
    {"DryRun", [](const DaemonState& a, const DaemonState& b) { return a.dry_run != b.dry_run; }},
    {"TriggerCount", [](const DaemonState& a,
                        const DaemonState& b) { return a.triggers_total != b.triggers_total; }},
    {"TriggerFailures",
     [](const DaemonState& a, const DaemonState& b) {
         return a.trigger_failures_total != b.trigger_failures_total;
     }},
    {"LastTrigger",
     [](const DaemonState& a, const DaemonState& b) {
         return a.last_trigger_realtime_usec != b.last_trigger_realtime_usec;
     }},
    {"KernelOomKills", [](const DaemonState& a,
                          const DaemonState& b) { return a.oom_kills_total != b.oom_kills_total; }},
    {"LastVictim",
     [](const DaemonState& a, const DaemonState& b) {
         return a.last_oom_kill.pid != b.last_oom_kill.pid ||
                a.last_oom_kill.realtime_usec != b.last_oom_kill.realtime_usec;
     }},
    {"PredictedVictim",
     [](const DaemonState& a, const DaemonState& b) {
         return a.prediction.pid != b.prediction.pid ||
                a.prediction.oom_score != b.prediction.oom_score;
     }},
    {"AuditFindings",
     [](const DaemonState& a, const DaemonState& b) { return !(a.audit == b.audit); }},
    {"LastError",
     [](const DaemonState& a, const DaemonState& b) { return a.last_error != b.last_error; }},
    {"MemAvailable",
     [](const DaemonState& a, const DaemonState& b) {
         return a.sample.mem_available != b.sample.mem_available;
     },
     true},
    {"MemTotal",
     [](const DaemonState& a, const DaemonState& b) {
         return a.sample.mem_total != b.sample.mem_total;
     },
     true},
}};

}  // namespace

std::span<const AnnouncedProperty> announced_properties() { return kProperties; }

bool announced_differ(const DaemonState& a, const DaemonState& b) {
    for (const auto& p : kProperties)
        if (p.differs(a, b)) return true;
    return false;
}

}  // namespace oomguard
