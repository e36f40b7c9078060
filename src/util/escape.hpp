// The escapes TOML basic strings and JSON strings share: quote, backslash,
// \n \r \t, other control characters as \u00XX. One place, so that the config
// rendering (--check-config, Dump) and the JSON/logfmt log lines agree.
#pragma once

#include <cstdio>
#include <string>

namespace oomguard {

// Appends `ch` (an ASCII byte) to `out`, escaped where needed.
inline void append_escaped_ascii(std::string& out, unsigned char ch) {
    switch (ch) {
        case '"':
            out += "\\\"";
            return;
        case '\\':
            out += "\\\\";
            return;
        case '\n':
            out += "\\n";
            return;
        case '\r':
            out += "\\r";
            return;
        case '\t':
            out += "\\t";
            return;
        default:
            break;
    }
    if (ch < 0x20 || ch == 0x7f) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", ch);
        out += buf;
    } else {
        out += static_cast<char>(ch);
    }
}

}  // namespace oomguard
