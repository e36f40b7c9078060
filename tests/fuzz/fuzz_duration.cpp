// Fuzzes parse_duration. Invariants for every duration that parses:
//  - it is not negative and at most 1e18 ns (no overflow in the loop's arithmetic);
//  - the exact form (render_duration) parses back to the same nanoseconds;
//  - the human form (format_duration) is not empty;
//  - blanks around it do not change it.
#include <cstdint>
#include <string>

#include "fuzz_check.hpp"
#include "util/units.hpp"

using namespace oomguard;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text = fuzz::as_text(data, size);
    auto r = parse_duration(text);
    if (!r) {
        FUZZ_CHECK(!r.error().message.empty(), fuzz::quote(text));
        return 0;
    }
    const Duration d = *r;
    const std::string what = fuzz::quote(text) + " -> " + std::to_string(d.count()) + "ns";
    FUZZ_CHECK(d.count() >= 0 && d.count() <= 1'000'000'000'000'000'000LL, what);

    const std::string exact = render_duration(d);
    auto e = parse_duration(exact);
    FUZZ_CHECK(e.ok() && *e == d, what + ": render_duration gave " + fuzz::quote(exact));
    FUZZ_CHECK(!format_duration(d).empty(), what);

    auto padded = parse_duration(" " + std::string(text) + "\t");
    FUZZ_CHECK(padded.ok() && *padded == d, what + ": blanks change the value");
    return 0;
}
