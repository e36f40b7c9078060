// Fuzzes parse_size. Invariants for every size that parses:
//  - it fits in int64 (the config and the policy do signed arithmetic on it);
//  - the human form (format_bytes: "5.1 GiB") parses back within its rounding (5%);
//  - the exact form (render_size) parses back to the same byte count;
//  - blanks around it do not change it, and "<text>/s" is the same rate.
#include <cstdint>
#include <limits>
#include <string>

#include "fuzz_check.hpp"
#include "util/units.hpp"

using namespace oomguard;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text = fuzz::as_text(data, size);
    auto r = parse_size(text);
    if (!r) {
        FUZZ_CHECK(!r.error().message.empty(), fuzz::quote(text));
        return 0;
    }
    const uint64_t bytes = *r;
    const std::string what = fuzz::quote(text) + " -> " + std::to_string(bytes);
    FUZZ_CHECK(bytes <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), what);

    // Rounding up may leave the range at its very top ("8388608 TiB" is 2^63),
    // so the human form is checked below 2^62 (4 EiB, far above any config).
    if (bytes <= (uint64_t{1} << 62)) {
        const std::string human = format_bytes(bytes);
        auto h = parse_size(human);
        FUZZ_CHECK(h.ok(), what + ": format_bytes gave unparseable " + fuzz::quote(human));
        const double diff = static_cast<double>(*h > bytes ? *h - bytes : bytes - *h);
        FUZZ_CHECK(diff <= static_cast<double>(bytes) * 0.05 + 1.0,
                   what + ": " + fuzz::quote(human) + " -> " + std::to_string(*h));
    }

    const std::string exact = render_size(bytes);
    auto e = parse_size(exact);
    FUZZ_CHECK(e.ok() && *e == bytes, what + ": render_size gave " + fuzz::quote(exact));

    auto padded = parse_size(" \t" + std::string(text) + "\t ");
    FUZZ_CHECK(padded.ok() && *padded == bytes, what + ": blanks change the value");
    auto rate = parse_rate(std::string(text) + "/s");
    FUZZ_CHECK(rate.ok() && *rate == bytes, what + ": not the same as a rate");
    return 0;
}
