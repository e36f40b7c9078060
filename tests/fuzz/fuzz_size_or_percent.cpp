// Fuzzes parse_size_or_percent (memory levels: "350MiB" or "5%"). Invariants:
//  - a percentage is finite and strictly between 0 and 100, and resolves
//    against any MemTotal to at most that MemTotal;
//  - a size is exactly what parse_size gives for the same text;
//  - the config form (to_config_string) parses back to the same value.
#include <cmath>
#include <cstdint>
#include <string>

#include "fuzz_check.hpp"
#include "util/units.hpp"

using namespace oomguard;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text = fuzz::as_text(data, size);
    auto r = parse_size_or_percent(text);
    if (!r) {
        FUZZ_CHECK(!r.error().message.empty(), fuzz::quote(text));
        return 0;
    }
    const SizeOrPercent v = *r;
    const std::string what = fuzz::quote(text) + " -> " + v.to_string();
    if (v.is_percent) {
        FUZZ_CHECK(std::isfinite(v.percent) && v.percent > 0.0 && v.percent < 100.0, what);
        for (uint64_t total : {uint64_t{0}, uint64_t{1}, uint64_t{16} << 30, uint64_t{1} << 50})
            FUZZ_CHECK(v.resolve(total) <= total,
                       what + " resolves above MemTotal " + std::to_string(total));
    } else {
        auto s = parse_size(text);
        FUZZ_CHECK(s.ok() && *s == v.bytes, what + ": differs from parse_size");
    }
    const std::string exact = v.to_config_string();
    auto again = parse_size_or_percent(exact);
    FUZZ_CHECK(again.ok() && *again == v, what + ": to_config_string gave " + fuzz::quote(exact));
    return 0;
}
