// Structured logging: journald (native protocol, fixed MESSAGE_ID per event) or
// lines on stderr (a terminal, or no journald). Never blocks: an entry journald
// has no room for goes to stderr instead. On stderr, one of three formats:
// plain ("<4>trigger: message FIELD=value", the default; a terminal gets
// "HH:MM:SS WARN message"), or for container log pipelines logfmt or JSON: one
// line per entry whatever the message holds (a table after the message's first
// line goes to a "detail" key, newlines escaped), no <N> prefix.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/log.hpp"
#include "service/datagram.hpp"

namespace oomguard {

// The 128-bit MESSAGE_ID (32 hex digits) of an event, or "" for Event::Info.
const char* message_id(Event e);
const char* event_name(Event e);

// "plain" | "logfmt" | "json"; false for anything else.
bool parse_log_format(std::string_view s, LogFormat& out);

// One entry as a single logfmt or JSON line (with "\n"), for stderr.
// realtime_usec: the entry's wall-clock time.
std::string format_structured_line(LogFormat f, uint64_t realtime_usec, Event e, int priority,
                                   std::string_view message, const std::vector<LogField>& fields);
// "warning", "notice", ...: the label of a plain line for an Event::Info entry.
const char* priority_name(int priority);

class Journal final : public Log {
public:
    // A logfmt or JSON format with LogTarget::Auto means stderr: the flag says
    // that a log pipeline reads it.
    explicit Journal(LogTarget target = LogTarget::Auto, LogFormat format = LogFormat::Plain);
    // priority: LOG_ERR .. LOG_DEBUG from <syslog.h>.
    void log(Event e, int priority, std::string_view message,
             const std::vector<LogField>& fields = {}) override;
    bool to_journal() const { return journal_; }
    bool to_terminal() const { return !journal_ && tty_; }
    unsigned long failures() const { return failures_; }

private:
    bool journal_ = false;
    bool tty_ = false;
    LogFormat format_ = LogFormat::Plain;
    unsigned long failures_ = 0;
    UnixDatagram socket_;  // journald, non-blocking
    bool torn_ = false;    // the last stderr line was cut short: start the next on a new line
    bool write_stderr(std::string_view line);
    void to_stderr(Event e, int priority, std::string_view message,
                   const std::vector<LogField>& fields);
};

}  // namespace oomguard
