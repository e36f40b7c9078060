#include "sensors/node_counters.hpp"

#include <charconv>

#include "sensors/psi.hpp"
#include "util/small_file.hpp"

namespace oomguard {

Result<uint64_t> parse_vmstat_field(std::string_view text, std::string_view key) {
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        if (line.size() <= key.size() || line.substr(0, key.size()) != key ||
            line[key.size()] != ' ')
            continue;
        std::string_view v = line.substr(key.size() + 1);
        uint64_t value = 0;
        auto r = std::from_chars(v.data(), v.data() + v.size(), value);
        if (r.ec != std::errc() || r.ptr != v.data() + v.size())
            return Error::logic("malformed vmstat line \"" + std::string(line) + "\"");
        return value;
    }
    return Error{ENOENT, "no " + std::string(key) + " line"};
}

Result<uint64_t> NodeCounters::oom_kills() const {
    const std::string path = proc_root_ + "/vmstat";
    auto text = read_small_file(path);
    if (!text) return text.error();
    auto v = parse_vmstat_field(*text, "oom_kill");
    if (!v) return Error{v.error().code, path + ": " + v.error().message};
    return v;
}

Result<PressureTotals> NodeCounters::memory_pressure() const {
    const std::string path = proc_root_ + "/pressure/memory";
    auto text = read_small_file(path);
    if (!text) return text.error();
    auto psi = parse_psi(*text);
    if (!psi) return Error{psi.error().code, path + ": " + psi.error().message};
    return PressureTotals{psi->some.total_us, psi->full.total_us, psi->has_full};
}

}  // namespace oomguard
