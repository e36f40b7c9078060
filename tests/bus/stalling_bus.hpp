// A fake system bus that stalls at a chosen stage of the D-Bus handshake, or
// relays to a real (private) dbus-daemon until told to stop reading. Listens on
// a unix socket at a temp path; point the daemon at it with
// DBUS_SYSTEM_BUS_ADDRESS=unix:path=<path>. One thread serves all connections.
#pragma once

#include <atomic>
#include <string>
#include <thread>

namespace oomguard::bustest {

class StallingBus {
public:
    enum class Stage {
        NoAuthReply,     // (a) accepts, never answers AUTH
        AuthThenStall,   // (b) answers the AUTH line with OK, then nothing (the reported case)
        NoHelloReply,    // (c) completes AUTH/NEGOTIATE_UNIX_FD/BEGIN, never answers Hello
        RelayThenStall,  // (d) relays to `upstream` until stall(), then stops reading the client
    };
    StallingBus(std::string socket_path, Stage stage, std::string upstream = "");
    ~StallingBus();
    StallingBus(const StallingBus&) = delete;
    StallingBus& operator=(const StallingBus&) = delete;

    std::string address() const { return "unix:path=" + path_; }
    // Connections accepted so far, and those that got as far as the stage.
    int accepted() const { return accepted_; }
    int reached() const { return reached_; }
    // RelayThenStall: from now on nothing the clients send is read (calls from
    // the real bus are still relayed to them, so their replies pile up).
    void stall() { stalled_ = true; }

private:
    std::string path_;
    Stage stage_;
    std::string upstream_;
    int listen_fd_ = -1;
    int wake_[2] = {-1, -1};
    std::atomic<bool> stop_{false};
    std::atomic<bool> stalled_{false};
    std::atomic<int> accepted_{0};
    std::atomic<int> reached_{0};
    std::thread thread_;

    void run();
};

}  // namespace oomguard::bustest
