#include "service/journal.hpp"

#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <algorithm>

namespace oomguard {

const char* message_id(Event e) {
    switch (e) {
        case Event::Start: return "82abdace5af84deda3af22f8cd452b58";
        case Event::Warning: return "6d5a05f1d98e440794d93d6f063f0b98";
        case Event::Trigger: return "70f9fe7ab100420db4a8c0f2db5f4ab2";
        case Event::TriggerFailed: return "0eef8c0416e845b2afda5c72a0bc1ff1";
        case Event::Recovered: return "67853c0e748b4bc19a42ade6c0873e44";
        case Event::Reload: return "ba1220f0b89b445f8b5aea9f4e08a18a";
        case Event::ReloadFailed: return "742e5bd663af4d27bb421f8489c9bbd2";
        case Event::Stop: return "290bd4de29c547b2aaaadb6cd2e29a77";
        case Event::Victim: return "235aad473e0144d7a2d7f4dbf692107a";
        case Event::SensorError: return "88d7345f111c4b05afc2c3fecfbd5891";
        case Event::Heaviest: return "554807d68d984d0cbe3dfc74d57d628a";
        case Event::NoAllocatable: return "752ce5bba3824e118d7eca22b6978404";
        case Event::KernelOom: return "56a12d7bb26c4ae19c59a11e6a29fddf";
        case Event::AuditFinding: return "efa13e236c2b4aae95f0abaf3e7ff5ec";
        case Event::Info: return "";
    }
    return "";
}

const char* event_name(Event e) {
    switch (e) {
        case Event::Start: return "start";
        case Event::Warning: return "warning";
        case Event::Trigger: return "trigger";
        case Event::TriggerFailed: return "trigger-failed";
        case Event::Recovered: return "recovered";
        case Event::Reload: return "reload";
        case Event::ReloadFailed: return "reload-failed";
        case Event::Stop: return "stop";
        case Event::Victim: return "victim";
        case Event::SensorError: return "sensor-error";
        case Event::Heaviest: return "heaviest";
        case Event::NoAllocatable: return "no-allocatable";
        case Event::KernelOom: return "kernel-oom";
        case Event::AuditFinding: return "audit-finding";
        case Event::Info: return "info";
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

Journal::Journal(LogTarget target) {
    tty_ = isatty(STDERR_FILENO) == 1;
    switch (target) {
        case LogTarget::Journal: journal_ = true; break;
        case LogTarget::Stderr: journal_ = false; break;
        case LogTarget::Auto:
            // A terminal gets readable lines; under systemd (or with a journald
            // socket and no terminal) we send structured entries; else stderr.
            journal_ = !tty_ && (stderr_is_journal_stream() || journald_socket_exists());
            break;
    }
    if (journal_) socket_.open(kJournalSocket);
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
    static constexpr const char* kLevel[] = {"EMERG", "ALERT", "CRIT", "ERROR",
                                             "WARN",  "NOTICE", "INFO", "DEBUG"};
    const char* level = kLevel[priority & 7];
    std::string line;
    if (tty_) {
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
        line = std::string("<") + std::to_string(priority) + ">" + event_name(e) + ": " +
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
    if (done == line.size()) torn_ = false;
    else if (done > 0) torn_ = true;  // nothing written at all leaves the old state
    return done == line.size();
}

}  // namespace oomguard
