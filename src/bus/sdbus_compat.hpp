// Everything that depends on the sdbus-c++ major version lives here, so that
// 2.x can be supported by adding a branch to this one header (and regenerating
// the glue with the 2.x sdbus-c++-xml2cpp). Callers never touch the differing APIs.
//
// 1.x -> 2.x differences this header hides:
//  - names are plain std::string in 1.x, strong types (ServiceName, ObjectPath,
//    InterfaceName, PropertyName, Error::Name) in 2.x;
//  - PollData: 1.x {fd, events, timeout_usec}; 2.x adds eventFd (must be polled
//    too) and a std::chrono timeout;
//  - IObject::getCurrentlyProcessedMessage(): a pointer in 1.x, a Message in 2.x;
//  - async reply callbacks get `const Error*` in 1.x, `std::optional<Error>` in 2.x.
#pragma once

#include <poll.h>
#include <sdbus-c++/sdbus-c++.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.hpp"

#if !defined(OOMGUARD_SDBUS_MAJOR)
#error "OOMGUARD_SDBUS_MAJOR must be set by the build (src/bus/meson.build)"
#elif OOMGUARD_SDBUS_MAJOR != 1
#error "Only sdbus-c++ 1.x is supported so far: add the 2.x branch to sdbus_compat.hpp"
#endif

namespace oomguard::dbus {

inline constexpr const char* kBusName = "org.oomguard1";
inline constexpr const char* kObjectPath = "/org/oomguard1";
inline constexpr const char* kInterface = "org.oomguard1.Manager";

// Standard error names the API returns.
inline constexpr const char* kErrAccessDenied = "org.freedesktop.DBus.Error.AccessDenied";
inline constexpr const char* kErrInvalidArgs = "org.freedesktop.DBus.Error.InvalidArgs";
inline constexpr const char* kErrFailed = "org.freedesktop.DBus.Error.Failed";
inline constexpr const char* kErrLimitsExceeded = "org.freedesktop.DBus.Error.LimitsExceeded";
inline constexpr const char* kErrReloadFailed = "org.oomguard1.Error.ReloadFailed";

// What the adaptor/proxy constructors take as names.
using ObjectPathArg = std::string;
using ServiceNameArg = std::string;
inline ObjectPathArg object_path(const char* p) { return p; }
inline ServiceNameArg service_name(const char* n) { return n; }

// Opens a new connection to the system bus ($DBUS_SYSTEM_BUS_ADDRESS, else the
// default socket). Throws sdbus::Error.
inline std::unique_ptr<sdbus::IConnection> open_system_bus() {
    return sdbus::createSystemBusConnection();
}

// Bounds every synchronous call on the connection (RequestName, the caller
// credentials query), so a wedged bus daemon cannot stall the loop for sd-bus's 25 s default.
inline void set_call_timeout(sdbus::IConnection& c, std::chrono::microseconds t) {
    c.setMethodCallTimeout(static_cast<uint64_t>(t.count()));
}

// The connection's fd, events and timeout relative to now (-1: none), for poll().
struct PollSpec {
    int fd = -1;
    short events = 0;
    int64_t timeout_ns = -1;
};

inline PollSpec poll_spec(const sdbus::IConnection& c) {
    const sdbus::IConnection::PollData pd = c.getEventLoopPollData();
    PollSpec s{pd.fd, pd.events, -1};
    if (pd.timeout_usec != UINT64_MAX) {
        // sd-bus's timeout is absolute CLOCK_MONOTONIC: the real clock.
        const uint64_t now_usec = static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(monotonic_clock().now()).count());
        s.timeout_ns = pd.timeout_usec <= now_usec
                           ? 0
                           : static_cast<int64_t>(pd.timeout_usec - now_usec) * 1000;
    }
    return s;
}

// The unique name of the sender of the message being handled.
inline std::string current_sender(const sdbus::IObject& object) {
    const sdbus::Message* m = object.getCurrentlyProcessedMessage();
    if (m == nullptr) throw sdbus::Error(kErrFailed, "no message is being processed");
    return m->getSender();
}

// A proxy for the bus daemon itself (org.freedesktop.DBus), on a connection
// whose loop the caller runs.
inline std::unique_ptr<sdbus::IProxy> bus_driver_proxy(sdbus::IConnection& c) {
    return sdbus::createProxy(c, "org.freedesktop.DBus", "/org/freedesktop/DBus");
}

// Asynchronous calls to the bus daemon: the daemon's loop never waits for the
// bus. `done(error, value)`: error empty on success. Not called when the proxy
// is destroyed first.
using AsyncU32Done = std::function<void(const std::string& error, uint32_t value)>;

// RequestName(name, DBUS_NAME_FLAG_DO_NOT_QUEUE); value: 1 primary owner, 3 exists, 4 already
// owner.
inline void request_name_async(sdbus::IProxy& driver, const char* name, AsyncU32Done done) {
    driver.callMethodAsync("RequestName")
        .onInterface("org.freedesktop.DBus")
        .withArguments(std::string(name), uint32_t{4})
        .uponReplyInvoke([done = std::move(done)](const sdbus::Error* e, uint32_t reply) {
            done(e ? e->getName() + ": " + e->getMessage() : std::string(), reply);
        });
}

// GetConnectionUnixUser(sender).
inline void caller_uid_async(sdbus::IProxy& driver, const std::string& sender, AsyncU32Done done) {
    driver.callMethodAsync("GetConnectionUnixUser")
        .onInterface("org.freedesktop.DBus")
        .withArguments(sender)
        .uponReplyInvoke([done = std::move(done)](const sdbus::Error* e, uint32_t uid) {
            done(e ? e->getName() + ": " + e->getMessage() : std::string(), uid);
        });
}

inline void emit_properties_changed(sdbus::IObject& object, const char* interface,
                                    const std::vector<std::string>& names) {
    object.emitPropertiesChangedSignal(interface, names);
}

inline sdbus::Error make_error(const char* name, const std::string& message) {
    return sdbus::Error(name, message);
}

inline std::string error_name(const sdbus::Error& e) { return e.getName(); }

// org.freedesktop.DBus.NameHasOwner(name), for clients. Throws sdbus::Error.
inline bool name_has_owner(sdbus::IConnection& c, const char* name) {
    auto bus = sdbus::createProxy(c, "org.freedesktop.DBus", "/org/freedesktop/DBus");
    bool has = false;
    bus->callMethod("NameHasOwner")
        .onInterface("org.freedesktop.DBus")
        .withArguments(std::string(name))
        .storeResultsTo(has);
    return has;
}

}  // namespace oomguard::dbus
