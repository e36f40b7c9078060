#include "service/notifier.hpp"

#include <systemd/sd-daemon.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/clock.hpp"

namespace oomguard {

Notifier::Notifier() {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (path) {
        if (Status st = socket_.open(path); !st)
            error_ = Error{st.error().code, "NOTIFY_SOCKET: " + st.error().message};
        else
            enabled_ = true;
    }
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0) watchdog_usec_ = usec;
}

void Notifier::send(const char* msg) {
    if (!enabled_) return;
    iovec iov{const_cast<char*>(msg), std::strlen(msg)};
    // Non-blocking; a lost STATUS= is replaced by the next one, a lost WATCHDOG=1
    // by the next ping (a quarter interval later).
    (void)socket_.send(&iov, 1);
}

void Notifier::ready(std::string_view status) {
    std::string m = "READY=1\nSTATUS=" + std::string(status);
    send(m.c_str());
}

void Notifier::status(std::string_view status) {
    // Called at most about once a second; a small fixed buffer avoids allocation.
    char buf[512];
    int n = std::snprintf(buf, sizeof buf, "STATUS=%.*s", static_cast<int>(status.size()),
                          status.data());
    if (n > 0) send(buf);
}

void Notifier::watchdog() { send("WATCHDOG=1"); }

void Notifier::reloading() {
    // systemd compares MONOTONIC_USEC with its own CLOCK_MONOTONIC: the real
    // clock, never an injected one.
    const auto usec =
        std::chrono::duration_cast<std::chrono::microseconds>(monotonic_clock().now()).count();
    char buf[96];
    std::snprintf(buf, sizeof buf, "RELOADING=1\nMONOTONIC_USEC=%llu",
                  static_cast<unsigned long long>(usec));
    send(buf);
}

void Notifier::stopping() { send("STOPPING=1"); }

}  // namespace oomguard
