// Fuzzes parse_psi (/proc/pressure/*: "some avg10=.. avg60=.. avg300=.. total=N").
// Invariants for every text that parses:
//  - there is a "some " line, and has_full is set exactly when a "full " line exists;
//  - every line it accepted carries all four fields once (a repeated avg10 is
//    not four fields), and the averages are finite and not negative;
//  - swapping the some and full lines does not change the values.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "sensors/psi.hpp"

using namespace oomguard;

namespace {

bool has_line(std::string_view text, std::string_view prefix) {
    for (size_t pos = 0; pos <= text.size();) {
        size_t nl = text.find('\n', pos);
        std::string_view line =
            text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        if (line.substr(0, prefix.size()) == prefix) return true;
        if (nl == std::string_view::npos) break;
        pos = nl + 1;
    }
    return false;
}

bool has_all_fields_once(std::string_view line) {
    for (std::string_view k : {" avg10=", " avg60=", " avg300=", " total="}) {
        size_t first = line.find(k);
        if (first == std::string_view::npos || line.find(k, first + 1) != std::string_view::npos)
            return false;
    }
    return true;
}

void check_line(const PsiLine& l, const std::string& what) {
    for (double v : {l.avg10, l.avg60, l.avg300})
        FUZZ_CHECK(std::isfinite(v) && v >= 0.0, what + ": average " + std::to_string(v));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text = fuzz::as_text(data, size);
    auto r = parse_psi(text);
    if (!r) {
        FUZZ_CHECK(!r.error().message.empty(), fuzz::quote(text));
        return 0;
    }
    const std::string what = fuzz::quote(text);
    FUZZ_CHECK(has_line(text, "some "), what + ": parsed without a some line");
    FUZZ_CHECK(r->has_full == has_line(text, "full "), what + ": has_full is wrong");

    // Every some/full line must carry each field once.
    std::vector<std::string_view> psi_lines;
    for (size_t pos = 0; pos < text.size();) {
        size_t nl = text.find('\n', pos);
        std::string_view line =
            text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        if (line.substr(0, 5) == "some " || line.substr(0, 5) == "full ") {
            FUZZ_CHECK(has_all_fields_once(line.substr(4)),
                       what + ": accepted " + fuzz::quote(line));
            psi_lines.push_back(line);
        }
        if (nl == std::string_view::npos) break;
        pos = nl + 1;
    }
    check_line(r->some, what);
    if (r->has_full) check_line(r->full, what);

    // The order of the lines does not matter (with one line of each kind; with
    // repeats the last one wins).
    if (psi_lines.size() > 2 ||
        (psi_lines.size() == 2 && psi_lines[0].substr(0, 5) == psi_lines[1].substr(0, 5)))
        return 0;
    std::string reversed;
    for (auto it = psi_lines.rbegin(); it != psi_lines.rend(); ++it)
        reversed += std::string(*it) + "\n";
    auto again = parse_psi(reversed);
    FUZZ_CHECK(again.ok(), what + ": the same lines in another order fail");
    FUZZ_CHECK(again->some.total_us == r->some.total_us && again->some.avg10 == r->some.avg10 &&
                   again->has_full == r->has_full &&
                   (!r->has_full || again->full.total_us == r->full.total_us),
               what + ": the same lines in another order give other values");
    return 0;
}
