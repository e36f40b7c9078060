// Structured logging: journald (native protocol, fixed MESSAGE_ID per event) or
// readable lines on stderr (a terminal, or no journald). Never blocks: an entry
// journald has no room for goes to stderr instead.
#pragma once

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

class Journal final : public Log {
public:
    explicit Journal(LogTarget target = LogTarget::Auto);
    // priority: LOG_ERR .. LOG_DEBUG from <syslog.h>.
    void log(Event e, int priority, std::string_view message,
             const std::vector<LogField>& fields = {}) override;
    bool to_journal() const { return journal_; }
    bool to_terminal() const { return !journal_ && tty_; }
    unsigned long failures() const { return failures_; }

private:
    bool journal_ = false;
    bool tty_ = false;
    unsigned long failures_ = 0;
    UnixDatagram socket_;  // journald, non-blocking
    bool torn_ = false;    // the last stderr line was cut short: start the next on a new line
    bool write_stderr(std::string_view line);
    void to_stderr(Event e, int priority, std::string_view message, const std::vector<LogField>& fields);
};

}  // namespace oomguard
