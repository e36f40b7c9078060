// Fuzzes parse_rate ("4GiB/s"). Invariants for every rate that parses:
//  - it is exactly parse_size of the text before "/s";
//  - the exact form (render_size + "/s") parses back to the same rate.
#include <cstdint>
#include <string>

#include "fuzz_check.hpp"
#include "util/units.hpp"

using namespace oomguard;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text = fuzz::as_text(data, size);
    auto r = parse_rate(text);
    if (!r) {
        FUZZ_CHECK(!r.error().message.empty(), fuzz::quote(text));
        return 0;
    }
    const std::string what = fuzz::quote(text) + " -> " + std::to_string(*r) + " B/s";
    const size_t slash = text.rfind("/s");
    FUZZ_CHECK(slash != std::string_view::npos, what + ": accepted without /s");
    auto s = parse_size(text.substr(0, slash));
    FUZZ_CHECK(s.ok() && *s == *r, what + ": differs from parse_size of the part before /s");
    const std::string exact = render_size(*r) + "/s";
    auto again = parse_rate(exact);
    FUZZ_CHECK(again.ok() && *again == *r,
               what + ": " + fuzz::quote(exact) + " does not parse back");
    return 0;
}
