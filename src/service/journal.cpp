#include "service/journal.hpp"

#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "util/escape.hpp"

namespace oomguard {

const char* message_id(Event e) {
    switch (e) {
        case Event::Start:
            return "82abdace5af84deda3af22f8cd452b58";
        case Event::Warning:
            return "6d5a05f1d98e440794d93d6f063f0b98";
        case Event::Trigger:
            return "70f9fe7ab100420db4a8c0f2db5f4ab2";
        case Event::TriggerFailed:
            return "0eef8c0416e845b2afda5c72a0bc1ff1";
        case Event::Recovered:
            return "67853c0e748b4bc19a42ade6c0873e44";
        case Event::Reload:
            return "ba1220f0b89b445f8b5aea9f4e08a18a";
        case Event::ReloadFailed:
            return "742e5bd663af4d27bb421f8489c9bbd2";
        case Event::Stop:
            return "290bd4de29c547b2aaaadb6cd2e29a77";
        case Event::Victim:
            return "235aad473e0144d7a2d7f4dbf692107a";
        case Event::SensorError:
            return "88d7345f111c4b05afc2c3fecfbd5891";
        case Event::Heaviest:
            return "554807d68d984d0cbe3dfc74d57d628a";
        case Event::NoAllocatable:
            return "752ce5bba3824e118d7eca22b6978404";
        case Event::KernelOom:
            return "56a12d7bb26c4ae19c59a11e6a29fddf";
        case Event::AuditFinding:
            return "efa13e236c2b4aae95f0abaf3e7ff5ec";
        case Event::OtherOomDaemon:
            return "d7c40836e3c74e9baa2f847071a9cb9f";
        case Event::Info:
            return "";
    }
    return "";
}

const char* event_name(Event e) {
    switch (e) {
        case Event::Start:
            return "start";
        case Event::Warning:
            return "warning";
        case Event::Trigger:
            return "trigger";
        case Event::TriggerFailed:
            return "trigger-failed";
        case Event::Recovered:
            return "recovered";
        case Event::Reload:
            return "reload";
        case Event::ReloadFailed:
            return "reload-failed";
        case Event::Stop:
            return "stop";
        case Event::Victim:
            return "victim";
        case Event::SensorError:
            return "sensor-error";
        case Event::Heaviest:
            return "heaviest";
        case Event::NoAllocatable:
            return "no-allocatable";
        case Event::KernelOom:
            return "kernel-oom";
        case Event::AuditFinding:
            return "audit-finding";
        case Event::OtherOomDaemon:
            return "other-oom-daemon";
        case Event::Info:
            return "info";
    }
    return "?";
}

namespace {

// stderr is connected to journald when $JOURNAL_STREAM names its device:inode.
bool stderr_is_journal_stream() {
    const char* js = std::getenv("JOURNAL_STREAM");
    if (!js) return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
    struct stat st;
    if (fstat(STDERR_FILENO, &st) != 0) return false;
    return st.st_dev == dev && st.st_ino == ino;
}

constexpr const char* kJournalSocket = "/run/systemd/journal/socket";

bool journald_socket_exists() {
    struct stat st;
    return stat(kJournalSocket, &st) == 0 && S_ISSOCK(st.st_mode);
}

}  // namespace

bool parse_log_format(std::string_view s, LogFormat& out) {
    if (s == "plain")
        out = LogFormat::Plain;
    else if (s == "logfmt")
        out = LogFormat::Logfmt;
    else if (s == "json")
        out = LogFormat::Json;
    else
        return false;
    return true;
}

const char* priority_name(int priority) {
    static constexpr const char* kName[] = {"emerg",   "alert",  "crit", "error",
                                            "warning", "notice", "info", "debug"};
    return kName[priority & 7];
}

namespace {

// "OOMGUARD_MEM_AVAILABLE_BYTES" -> "mem_available_bytes", "ERRNO" -> "errno".
std::string field_key(std::string_view name) {
    constexpr std::string_view kPrefix = "OOMGUARD_";
    if (name.starts_with(kPrefix)) name.remove_prefix(kPrefix.size());
    std::string k(name);
    for (char& ch : k)
        if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    return k;
}

// JSON string contents; logfmt quoted values use the same escapes.
// Length of the valid UTF-8 sequence at v[i], 0 if invalid.
size_t utf8_len(std::string_view v, size_t i) {
    const auto b = [&](size_t k) { return static_cast<unsigned char>(v[k]); };
    const unsigned char c = b(i);
    size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
    if (n == 0 || i + n > v.size()) return 0;
    for (size_t k = 1; k < n; ++k)
        if ((b(i + k) & 0xc0) != 0x80) return 0;
    return n;
}

// JSON string contents; logfmt quoted values use the same escapes. Bytes that
// are not UTF-8 (a pod or task name is any bytes) become U+FFFD, so that every
// line parses.
void escape_into(std::string& out, std::string_view v) {
    for (size_t i = 0; i < v.size(); ++i) {
        const unsigned char ch = static_cast<unsigned char>(v[i]);
        if (ch >= 0x80) {
            if (size_t n = utf8_len(v, i)) {
                out.append(v.substr(i, n));
                i += n - 1;
            } else {
                out += "\\ufffd";
            }
            continue;
        }
        append_escaped_ascii(out, ch);
    }
}

bool logfmt_needs_quotes(std::string_view v) {
    if (v.empty()) return true;
    for (unsigned char ch : v)
        if (ch <= ' ' || ch == '=' || ch == '"' || ch == '\\' || ch == 0x7f) return true;
    return false;
}

std::string rfc3339_utc(uint64_t realtime_usec) {
    const time_t sec = static_cast<time_t>(realtime_usec / 1000000);
    tm t;
    gmtime_r(&sec, &t);
    char buf[40];
    const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
    std::snprintf(buf + n, sizeof buf - n, ".%03uZ",
                  static_cast<unsigned>(realtime_usec / 1000 % 1000));
    return buf;
}

}  // namespace

std::string format_structured_line(LogFormat f, uint64_t realtime_usec, Event e, int priority,
                                   std::string_view message, const std::vector<LogField>& fields) {
    // The message's first line is the message; a table after it is detail.
    std::string_view msg = message, detail;
    if (size_t nl = message.find('\n'); nl != std::string_view::npos) {
        msg = message.substr(0, nl);
        detail = message.substr(nl + 1);
    }
    std::vector<std::pair<std::string, std::string_view>> kv;
    kv.reserve(6 + fields.size());
    const std::string ts = rfc3339_utc(realtime_usec);
    kv.emplace_back("ts", ts);
    kv.emplace_back("level", priority_name(priority));
    kv.emplace_back("event", event_name(e));
    kv.emplace_back("msg", msg);
    if (!detail.empty()) kv.emplace_back("detail", detail);
    if (*message_id(e)) kv.emplace_back("message_id", message_id(e));
    for (const auto& fl : fields) {
        std::string k = field_key(fl.name);
        // One value per key, the first: JSON must not repeat a key.
        if (std::any_of(kv.begin(), kv.end(), [&](const auto& p) { return p.first == k; }))
            continue;
        kv.emplace_back(std::move(k), fl.value);
    }
    std::string line;
    line.reserve(128 + message.size() + 48 * fields.size());
    if (f == LogFormat::Json) {
        line += '{';
        for (size_t i = 0; i < kv.size(); ++i) {
            line += i ? ",\"" : "\"";
            line += kv[i].first;
            line += "\":\"";
            escape_into(line, kv[i].second);
            line += '"';
        }
        line += "}\n";
    } else {
        for (size_t i = 0; i < kv.size(); ++i) {
            if (i) line += ' ';
            line += kv[i].first;
            line += '=';
            if (logfmt_needs_quotes(kv[i].second)) {
                line += '"';
                escape_into(line, kv[i].second);
                line += '"';
            } else {
                line += kv[i].second;
            }
        }
        line += '\n';
    }
    return line;
}

Journal::Journal(LogTarget target, LogFormat format) : format_(format) {
    tty_ = isatty(STDERR_FILENO) == 1;
    switch (target) {
        case LogTarget::Journal:
            journal_ = true;
            break;
        case LogTarget::Stderr:
            journal_ = false;
            break;
        case LogTarget::Auto:
            // A terminal gets readable lines; under systemd (or with a journald
            // socket and no terminal) we send structured entries; else stderr.
            // An explicit logfmt/JSON format is for whoever reads stderr.
            journal_ = format == LogFormat::Plain && !tty_ &&
                       (stderr_is_journal_stream() || journald_socket_exists());
            break;
    }
    // A socket that cannot be made: each entry goes to stderr (log()).
    if (journal_) (void)socket_.open(kJournalSocket);
}

namespace {

// journald's native protocol: "NAME=value\n", or for a value with a newline
// "NAME\n" + its length as 64-bit little endian + value + "\n".
void add_field(std::string& out, std::string_view name, std::string_view value) {
    out += name;
    if (value.find('\n') == std::string_view::npos) {
        out += '=';
        out += value;
    } else {
        out += '\n';
        uint64_t n = value.size();
        for (int i = 0; i < 8; ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
        out += value;
    }
    out += '\n';
}

}  // namespace

void Journal::log(Event e, int priority, std::string_view message,
                  const std::vector<LogField>& fields) {
    if (journal_) {
        std::string entry;
        entry.reserve(256 + message.size() + 64 * fields.size());
        add_field(entry, "MESSAGE", message);
        add_field(entry, "PRIORITY", std::to_string(priority));
        add_field(entry, "SYSLOG_IDENTIFIER", "oomguard");
        add_field(entry, "OOMGUARD_EVENT", event_name(e));
        if (*message_id(e)) add_field(entry, "MESSAGE_ID", message_id(e));
        for (const auto& f : fields) add_field(entry, f.name, f.value);
        iovec iov{entry.data(), entry.size()};
        // Not sd_journal_sendv(): it blocks on a stalled journald and reports
        // success when the socket is missing. Any failure: stderr, this entry.
        if (socket_.send(&iov, 1) == 0) return;
        ++failures_;
    }
    to_stderr(e, priority, message, fields);
}

void Journal::to_stderr(Event e, int priority, std::string_view message,
                        const std::vector<LogField>& fields) {
    static constexpr const char* kLevel[] = {"EMERG", "ALERT",  "CRIT", "ERROR",
                                             "WARN",  "NOTICE", "INFO", "DEBUG"};
    const char* level = kLevel[priority & 7];
    std::string line;
    if (format_ != LogFormat::Plain) {
        timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        line = format_structured_line(
            format_,
            static_cast<uint64_t>(now.tv_sec) * 1000000 + static_cast<uint64_t>(now.tv_nsec) / 1000,
            e, priority, message, fields);
    } else if (tty_) {
        char ts[32];
        timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        tm t;
        localtime_r(&now.tv_sec, &t);
        std::strftime(ts, sizeof ts, "%H:%M:%S", &t);
        line = std::string(ts) + " " + level + " " + std::string(message) + "\n";
    } else {
        // Not a terminal: one line per entry that tests and scripts can grep,
        // with the structured fields after the message.
        // An entry without an event of its own is labelled by its priority
        // ("<4>warning: ...", not "<4>info: ...").
        line = std::string("<") + std::to_string(priority) + ">" +
               (e == Event::Info ? priority_name(priority) : event_name(e)) + ": " +
               std::string(message);
        for (const auto& f : fields) {
            if (f.value.find('\n') != std::string::npos) continue;
            line += " " + f.name + "=" + f.value;
        }
        line += "\n";
    }
    if (!write_stderr(line)) ++failures_;
}

bool Journal::write_stderr(std::string_view line) {
    // Under systemd stderr is a stream socket to journald; in a container it is
    // a pipe or FIFO to the runtime; in the demo a terminal. None of them may
    // hold up the loop when their reader stalls (a blocked write stopped
    // sampling, triggers and SIGTERM until the reader drained). Sockets: send
    // with MSG_DONTWAIT. Pipes and terminals: write only what poll() says fits
    // now, PIPE_BUF at a time (such a write into a pipe with room never blocks);
    // the rest of the entry is dropped and the next one starts on a new line.
    // Regular files are written as they are.
    std::string buf;
    if (torn_) {
        buf.reserve(line.size() + 1);
        buf += '\n';
        buf += line;
        line = buf;
    }
    ssize_t r = ::send(STDERR_FILENO, line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r >= 0) {
        torn_ = static_cast<size_t>(r) != line.size();
        return !torn_;
    }
    if (errno != ENOTSOCK) return false;
    size_t done = 0;
    while (done < line.size()) {
        pollfd p{STDERR_FILENO, POLLOUT, 0};
        if (::poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT)) break;
        const size_t chunk = std::min<size_t>(line.size() - done, PIPE_BUF);
        r = ::write(STDERR_FILENO, line.data() + done, chunk);
        if (r <= 0) break;  // EPIPE (SIGPIPE is ignored), EAGAIN, ...
        done += static_cast<size_t>(r);
    }
    if (done == line.size())
        torn_ = false;
    else if (done > 0)
        torn_ = true;  // nothing written at all leaves the old state
    return done == line.size();
}

}  // namespace oomguard
