#include "support/journal.hpp"

namespace oomguard::test {

std::string field(const std::string& entry, const std::string& name) {
    std::string key = " " + name + "=";
    size_t p = entry.find(key);
    if (p == std::string::npos) return "";
    p += key.size();
    size_t e = entry.find_first_of(" \n", p);
    return entry.substr(p, e == std::string::npos ? std::string::npos : e - p);
}

std::vector<std::string> split_entries(const std::string& text) {
    std::vector<std::string> entries;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string::npos) break;  // a line still being written: not yet
        std::string line = text.substr(pos, nl - pos);
        pos = nl + 1;
        // "<N>event: ..." starts an entry; other lines continue the last one.
        if (line.size() > 3 && line[0] == '<' && line[2] == '>')
            entries.push_back(line);
        else if (!entries.empty())
            entries.back() += "\n" + line;
        else
            entries.push_back(line);
    }
    return entries;
}

bool is_event(const std::string& e, const std::string& event, const std::string& needle) {
    size_t gt = e.find('>');
    return gt != std::string::npos && e.compare(gt + 1, event.size() + 1, event + ":") == 0 &&
           (needle.empty() || e.find(needle) != std::string::npos);
}

}  // namespace oomguard::test
