// Walking a kernel text file line by line without allocating.
#pragma once

#include <string_view>

namespace oomguard {

// Takes the next line (without its '\n') off the front of `rest`; false when
// nothing is left. A last line without '\n' is still a line.
inline bool next_line(std::string_view& rest, std::string_view& line) {
    if (rest.empty()) return false;
    size_t nl = rest.find('\n');
    line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    return true;
}

}  // namespace oomguard
