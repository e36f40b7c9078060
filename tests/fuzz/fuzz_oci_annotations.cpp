// Fuzzes the runtime bundle config.json reader (parse_oci_annotations), which
// reads files the container runtime writes for every container. Invariants:
//  - never crashes, never recurses without bound (deep nesting is an error);
//  - a rejected input says "bad JSON at byte N" with N within the input;
//  - accepted annotations, written back as JSON, parse to the same pairs.
#include <cstdint>
#include <cstdio>
#include <string>

#include "cgroup/runtime_state.hpp"
#include "fuzz_check.hpp"

using namespace oomguard;

namespace {

std::string json_string(const std::string& s) {
    std::string o = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            o += '\\';
            o += static_cast<char>(c);
        } else if (c < 0x20) {
            char b[8];
            std::snprintf(b, sizeof b, "\\u%04x", c);
            o += b;
        } else {
            o += static_cast<char>(c);
        }
    }
    return o + "\"";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text = fuzz::as_text(data, size);
    auto r = parse_oci_annotations(text);
    if (!r) {
        const std::string& m = r.error().message;
        FUZZ_CHECK(m.rfind("bad JSON at byte ", 0) == 0, fuzz::quote(text) + " -> " + m);
        const unsigned long at = std::stoul(m.substr(17));
        FUZZ_CHECK(at <= size, fuzz::quote(text) + " -> " + m);
        return 0;
    }
    std::string again = "{\"annotations\": {";
    for (size_t i = 0; i < r->size(); ++i)
        again += (i ? ", " : "") + json_string((*r)[i].first) + ": " + json_string((*r)[i].second);
    again += "}}";
    auto r2 = parse_oci_annotations(again);
    FUZZ_CHECK(r2.ok(), fuzz::quote(text) + " -> " + fuzz::quote(again));
    FUZZ_CHECK(*r2 == *r, fuzz::quote(text) + " -> " + fuzz::quote(again));
    return 0;
}
