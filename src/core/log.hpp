// Structured log entries as components make them: an event kind, a priority and
// fields. The journal (src/service/journal.hpp) implements Log; components take
// a Log& so that they log without depending on the service layer.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace oomguard {

enum class Event {
    Start,
    Warning,
    Trigger,
    TriggerFailed,
    Recovered,
    Reload,
    ReloadFailed,
    Stop,
    Victim,
    SensorError,
    Heaviest,
    NoAllocatable,
    KernelOom,
    AuditFinding,    // the node audit (issue 14)
    OtherOomDaemon,  // earlyoom, systemd-oomd, ... running too
    Info,  // no MESSAGE_ID
};

struct LogField {
    std::string name;  // the full journal field name, e.g. "OOMGUARD_CGROUP"
    std::string value;
};

enum class LogTarget { Auto, Journal, Stderr };
// stderr lines: plain ("<4>trigger: ..."), or one logfmt/JSON line per entry.
enum class LogFormat { Plain, Logfmt, Json };

class Log {
public:
    virtual ~Log() = default;
    // priority: LOG_ERR .. LOG_DEBUG from <syslog.h>.
    virtual void log(Event e, int priority, std::string_view message,
                     const std::vector<LogField>& fields = {}) = 0;
};

}  // namespace oomguard
