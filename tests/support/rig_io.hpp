// What a rig gives the daemon to talk to: a trigger FIFO the test reads and a
// NOTIFY_SOCKET the test receives on.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace oomguard::test {

using namespace std::chrono_literals;
// The rigs' time (not oomguard::Clock, the daemon's injectable clock).
using Clock = std::chrono::steady_clock;

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

}  // namespace oomguard::test
