#include "system_bus_address.hpp"

#include <cstdlib>

namespace oomguard {

std::string system_bus_address() {
    const char* a = std::getenv("DBUS_SYSTEM_BUS_ADDRESS");
    return a && *a ? a : kDefaultSystemBusAddress;
}

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

std::optional<std::string> unix_socket_path(std::string_view address) {
    if (address.find(';') != std::string_view::npos) {
        // "a;b;": a trailing separator still means one entry.
        std::string_view rest = address.substr(address.find(';') + 1);
        if (!rest.empty()) return std::nullopt;
        address = address.substr(0, address.find(';'));
    }
    constexpr std::string_view prefix = "unix:";
    if (address.substr(0, prefix.size()) != prefix) return std::nullopt;
    std::string_view params = address.substr(prefix.size());
    std::optional<std::string> path;
    while (!params.empty()) {
        size_t comma = params.find(',');
        std::string_view kv = params.substr(0, comma);
        params = comma == std::string_view::npos ? std::string_view{} : params.substr(comma + 1);
        size_t eq = kv.find('=');
        if (eq == std::string_view::npos) return std::nullopt;
        std::string_view key = kv.substr(0, eq), value = kv.substr(eq + 1);
        if (key == "path") {
            std::string decoded;
            for (size_t i = 0; i < value.size(); ++i) {
                if (value[i] == '%') {
                    if (i + 2 >= value.size()) return std::nullopt;
                    int hi = hex_value(value[i + 1]);
                    int lo = hex_value(value[i + 2]);
                    if (hi < 0 || lo < 0) return std::nullopt;
                    decoded.push_back(static_cast<char>(hi * 16 + lo));
                    i += 2;
                } else {
                    decoded.push_back(value[i]);
                }
            }
            if (decoded.empty()) return std::nullopt;
            path = std::move(decoded);
        } else if (key == "abstract" || key == "tmpdir" || key == "dir" || key == "runtime") {
            return std::nullopt;
        }
    }
    return path;
}

}  // namespace oomguard
