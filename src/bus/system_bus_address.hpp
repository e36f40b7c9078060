// The system bus address, and the socket path in it (for BusProbe).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace oomguard {

inline constexpr const char* kDefaultSystemBusAddress = "unix:path=/run/dbus/system_bus_socket";

// $DBUS_SYSTEM_BUS_ADDRESS, else the default; what sd-bus connects to.
std::string system_bus_address();

// The socket path of an address that is one "unix:path=..." entry (with
// %XX escapes decoded); nullopt for any other form (several entries, abstract, tcp).
std::optional<std::string> unix_socket_path(std::string_view address);

}  // namespace oomguard
