// Fuzzes the config loader (parse_config). Invariants:
//  - it never throws or crashes, whatever the bytes;
//  - every error has a message, and the errors are sorted by line;
//  - a config that loads renders (render_config, what --check-config prints)
//    to TOML that loads again to exactly the same values, and renders the same.
#include <cstdint>
#include <string>

#include "config/config.hpp"
#include "fuzz_check.hpp"

using namespace oomguard;

namespace {

std::string explain(const ConfigLoad& l) {
    std::string s;
    for (const auto& e : l.errors) s += e.to_string("rendered") + "\n";
    return s;
}

// Every field, so a lossy render shows up as a named difference.
std::string first_difference(const Config& a, const Config& b) {
#define SAME(field) \
    if (!(a.field == b.field)) return #field;
    SAME(memory.min_available)
    SAME(memory.warn_available)
    SAME(memory.recover_available)
    SAME(action.mode)
    SAME(action.sysrq_trigger)
    SAME(action.repeat_after)
    SAME(action.fallback_sysrq)
    SAME(poll.min_interval)
    SAME(poll.idle_interval)
    SAME(poll.max_interval)
    SAME(poll.fill_rate)
    SAME(poll.psi)
    SAME(paths.proc)
    SAME(paths.cgroup)
    SAME(paths.kmsg)
    SAME(kubernetes.log_heaviest)
    SAME(kubernetes.pod_logs_dir)
    SAME(kubernetes.exclude_namespaces)
    SAME(kubernetes.kill_guaranteed)
    SAME(metrics.textfile)
    SAME(metrics.interval)
#undef SAME
    return "";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // Real configs are small; huge inputs only slow the search down.
    if (size > 16384) return 0;
    const std::string_view text = fuzz::as_text(data, size);
    ConfigLoad load = parse_config(text, "fuzz.toml");

    FUZZ_CHECK(load.config.has_value() == load.errors.empty(), explain(load));
    int last_line = 0;
    for (const auto& e : load.errors) {
        FUZZ_CHECK(!e.message.empty(), "an error without a message for key " + e.key);
        FUZZ_CHECK(e.line >= last_line, "errors not sorted by line:\n" + explain(load));
        last_line = e.line;
    }
    if (!load.config) return 0;

    const std::string rendered = render_config(*load.config);
    ConfigLoad again = parse_config(rendered, "rendered.toml");
    FUZZ_CHECK(again.config.has_value(),
               "the rendered config does not load:\n" + rendered + "\n" + explain(again));
    const std::string diff = first_difference(*load.config, *again.config);
    FUZZ_CHECK(diff.empty(), diff + " changed by render + parse:\n" + rendered);
    FUZZ_CHECK(render_config(*again.config) == rendered,
               "render is not a fixed point:\n" + rendered);
    return 0;
}
