// Renderings: ConfigError, and the effective config as
// TOML (--check-config, the D-Bus Dump).
#include <cstdio>
#include <sstream>

#include "config/config.hpp"
#include "util/escape.hpp"

namespace oomguard {

std::string ConfigError::to_string(const std::string& path) const {
    std::ostringstream o;
    o << (file.empty() ? path : file);
    if (line > 0) o << ":" << line;
    o << ": ";
    if (!key.empty()) o << key << ": ";
    o << message;
    return o.str();
}

namespace {

// A TOML basic string: quotes, backslashes and control characters escaped, so
// any path or name that loaded renders back to the same string.
std::string toml_quote(const std::string& s) {
    std::string out = "\"";
    for (unsigned char ch : s) append_escaped_ascii(out, ch);
    return out + "\"";
}

}  // namespace

// Exact values (render_size/render_duration), not the rounded human forms, so
// the output of --check-config loads again to the same config.
std::string render_config(const Config& c) {
    std::ostringstream o;
    auto q = [](const std::string& s) { return toml_quote(s); };
    o << "[memory]\n";
    o << "min_available = " << q(c.memory.min_available.to_config_string()) << "\n";
    if (c.memory.warn_available)
        o << "warn_available = " << q(c.memory.warn_available->to_config_string()) << "\n";
    else
        o << "# warn_available: unset (no warning level)\n";
    if (c.memory.recover_available)
        o << "recover_available = " << q(c.memory.recover_available->to_config_string()) << "\n";
    else
        o << "# recover_available: unset ("
          << (c.memory.warn_available ? "= warn_available" : "= 2 x min_available") << ")\n";
    o << "\n[action]\n";
    o << "mode = " << q(to_string(c.action.mode)) << "\n";
    o << "sysrq_trigger = " << q(c.action.sysrq_trigger) << "\n";
    o << "repeat_after = " << q(render_duration(c.action.repeat_after)) << "\n";
    o << "fallback_sysrq = " << (c.action.fallback_sysrq ? "true" : "false") << "\n";
    o << "\n[poll]\n";
    o << "min_interval = " << q(render_duration(c.poll.min_interval)) << "\n";
    if (c.poll.idle_interval)
        o << "idle_interval = " << q(render_duration(*c.poll.idle_interval)) << "\n";
    else
        o << "# idle_interval: unset (" << render_duration(Config::Poll::kDefaultIdleInterval)
          << ", within [min_interval, max_interval])\n";
    o << "max_interval = " << q(render_duration(c.poll.max_interval)) << "\n";
    o << "fill_rate = " << q(render_size(c.poll.fill_rate) + "/s") << "\n";
    o << "psi = " << (c.poll.psi ? "true" : "false") << "\n";
    o << "\n[paths]\n";
    o << "proc = " << q(c.paths.proc) << "\ncgroup = " << q(c.paths.cgroup)
      << "\nkmsg = " << q(c.paths.kmsg) << "\nlock = " << q(c.paths.lock) << "\n";
    o << "containerd_state = " << q(c.paths.containerd_state)
      << "\ncrio_storage = " << q(c.paths.crio_storage) << "\n";
    o << "\n[kubernetes]\n";
    o << "log_heaviest = " << (c.kubernetes.log_heaviest ? "true" : "false") << "\n";
    o << "pod_logs_dir = " << q(c.kubernetes.pod_logs_dir) << "\n";
    o << "exclude_namespaces = [";
    for (size_t i = 0; i < c.kubernetes.exclude_namespaces.size(); ++i)
        o << (i ? ", " : "") << q(c.kubernetes.exclude_namespaces[i]);
    o << "]\n";
    o << "kill_guaranteed = " << (c.kubernetes.kill_guaranteed ? "true" : "false") << "\n";
    o << "kubepods_cgroup = " << q(c.kubernetes.kubepods_cgroup) << "\n";
    o << "scan_budget = " << q(format_duration(c.kubernetes.scan_budget)) << "\n";
    o << "\n[metrics]\n";
    o << "textfile = " << q(c.metrics.textfile) << "\n";
    o << "interval = " << q(render_duration(c.metrics.interval)) << "\n";
    return o.str();
}

}  // namespace oomguard
