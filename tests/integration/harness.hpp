// Test harness for running the real oomguard binary: a temp dir, a fake proc
// root whose meminfo is rewritten in place, a trigger FIFO the test reads, a
// NOTIFY_SOCKET the test receives on, and the daemon as a child process.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace oomguard::test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The daemon's stderr line for the end of a triggered episode (Event::Recovered).
inline constexpr const char* kRecoveredEntry = "<5>recovered: MemAvailable ";

std::string oomguard_binary();  // $OOMGUARD_BIN (set by meson), else build/src/oomguard

class TempDir {
public:
    TempDir();
    ~TempDir();
    const std::string& path() const { return path_; }
    std::string file(const std::string& rel) const { return path_ + "/" + rel; }
    void write(const std::string& rel, const std::string& content) const;

private:
    std::string path_;
};

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& content);

// <dir>/proc/meminfo with fixed-width values, rewritten in place (same length),
// as a daemon that keeps the fd open and preads it must see.
class FakeProc {
public:
    explicit FakeProc(const std::string& root_dir, uint64_t total_bytes = 16ull << 30);
    const std::string& root() const { return root_; }
    void set_available(uint64_t bytes);
    uint64_t total() const { return total_; }

private:
    std::string root_;
    uint64_t total_;
    std::string render(uint64_t avail) const;
};

// A FIFO the daemon writes 'f' to; the test holds the read end (non-blocking).
class TriggerFifo {
public:
    explicit TriggerFifo(const std::string& path);
    ~TriggerFifo();
    const std::string& path() const { return path_; }
    // Reads what is there now; returns the number of 'f' bytes read.
    size_t drain();
    // Waits until at least one byte arrives; returns the time it arrived, or nullopt.
    std::optional<Clock::time_point> wait_byte(std::chrono::milliseconds timeout);
    size_t total() const { return total_; }

private:
    std::string path_;
    int fd_ = -1;
    size_t total_ = 0;
};

// An AF_UNIX datagram socket to use as $NOTIFY_SOCKET.
class NotifySocket {
public:
    explicit NotifySocket(const std::string& path);
    ~NotifySocket();
    const std::string& path() const { return path_; }
    // Receives everything pending within timeout, appended to messages().
    void pump(std::chrono::milliseconds timeout);
    // Waits for a message containing `needle`; true if one arrived.
    bool wait_for(const std::string& needle, std::chrono::milliseconds timeout);
    const std::vector<std::string>& messages() const { return messages_; }
    size_t count(const std::string& needle) const;

private:
    std::string path_;
    int fd_ = -1;
    std::vector<std::string> messages_;
};

class DaemonProcess {
public:
    DaemonProcess() = default;
    ~DaemonProcess();
    // Starts the binary with args; stderr and stdout go to log_path. A non-empty
    // wrapper runs it through a command first, e.g. {"setpriv", "--reuid=nobody", ...}.
    void start(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
               const std::string& log_path, const std::vector<std::string>& wrapper = {});
    pid_t pid() const { return pid_; }
    bool running();
    void signal(int sig);
    // Waits for exit; returns the exit status (WEXITSTATUS), or -1 on timeout/signal.
    int wait_exit(std::chrono::milliseconds timeout);
    std::string log() const;
    bool wait_log(const std::string& needle, std::chrono::milliseconds timeout, size_t occurrences = 1) const;
    size_t log_count(const std::string& needle) const;

private:
    pid_t pid_ = -1;
    std::string log_path_;
    int status_ = 0;
    bool exited_ = false;
};

}  // namespace oomguard::test
