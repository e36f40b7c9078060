// sd_notify protocol: READY, STATUS (rate-limited by the caller), WATCHDOG,
// RELOADING with MONOTONIC_USEC, STOPPING. A no-op without $NOTIFY_SOCKET.
// Sent without blocking (see datagram.hpp): a message PID 1 has no room for is
// dropped and counted, never waited for.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "service/datagram.hpp"

namespace oomguard {

class Notifier {
public:
    Notifier();
    bool enabled() const { return enabled_; }
    // Why $NOTIFY_SOCKET is set but unusable (systemd then never hears READY).
    const std::optional<Error>& error() const { return error_; }
    // 0 when the watchdog is off.
    uint64_t watchdog_usec() const { return watchdog_usec_; }

    void ready(std::string_view status);
    void status(std::string_view status);
    void watchdog();
    void reloading();
    void stopping();

private:
    bool enabled_ = false;
    std::optional<Error> error_;
    uint64_t watchdog_usec_ = 0;
    UnixDatagram socket_;
    void send(const char* msg);
};

}  // namespace oomguard
