// The daemon's configuration: TOML -> this plain struct. Every field is
// validated; every error names the key and the line.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/action_mode.hpp"
#include "core/defaults.hpp"
#include "util/result.hpp"
#include "util/units.hpp"

namespace oomguard {

struct Config {
    struct Memory {
        SizeOrPercent min_available{false, 350ull << 20, 0};
        std::optional<SizeOrPercent> warn_available;
        // Re-arm level after a trigger. Unset: warn_available if set, else 2 x min_available.
        std::optional<SizeOrPercent> recover_available;
    } memory;

    struct Action {
        ActionMode mode = ActionMode::Sysrq;
        std::string sysrq_trigger = "/proc/sysrq-trigger";
        Duration repeat_after = defaults::kRepeatAfter;
        // kill-cgroup: fall back to sysrq when no eligible victim exists.
        bool fallback_sysrq = true;
    } action;

    struct Poll {
        static constexpr Duration kDefaultIdleInterval = defaults::kIdleInterval;
        Duration min_interval = defaults::kMinInterval;
        // Shortest interval while memory is steady. Unset: kDefaultIdleInterval
        // moved inside [min_interval, max_interval].
        std::optional<Duration> idle_interval;
        Duration max_interval = defaults::kMaxInterval;
        // bytes/s: the fill rate assumed before any fall is seen (the estimate's floor)
        uint64_t fill_rate = defaults::kFillRate;
        bool psi = true;                 // wake on /proc/pressure/memory stalls
    } poll;

    struct Paths {
        std::string proc = "/proc";
        std::string cgroup = "/sys/fs/cgroup";
        std::string kmsg = "/dev/kmsg";
        // The runtimes' state, for container names without kubelet's log links.
        std::string containerd_state = "/run/containerd";
        std::string crio_storage = "/run/containers/storage";
        // The instance lock (flock): a second oomguard on the node refuses to
        // start. "": none. The unit's RuntimeDirectory=oomguard creates the dir.
        std::string lock = "/run/oomguard/lock";
    } paths;

    struct Kubernetes {
        bool log_heaviest = true;
        std::string pod_logs_dir = "/var/log/pods";
        std::vector<std::string> exclude_namespaces{defaults::kExcludeNamespaces.begin(),
                                                    defaults::kExcludeNamespaces.end()};
        bool kill_guaranteed = defaults::kKillGuaranteed;
        // The kubepods cgroup relative to the memory hierarchy root; "" finds it
        // (kubepods.slice, kubepods, kubelet.slice/kubelet-kubepods.slice, kubelet/kubepods).
        std::string kubepods_cgroup;
        // How long the heaviest-pod scan may delay a trigger (and a background refresh may take).
        Duration scan_budget = std::chrono::milliseconds(20);
    } kubernetes;

    struct Metrics {
        std::string textfile;  // empty: off
        Duration interval = std::chrono::seconds(15);
    } metrics;

    std::string source_path;  // where it was loaded from (for messages)
    // Line of each key that was set ("memory.min_available" -> 3), for errors
    // found later (check_against_mem_total).
    std::map<std::string, int> key_lines;
};

struct ConfigError {
    std::string key;   // "memory.min_available"
    int line = 0;      // 0 when unknown
    std::string message;
    std::string to_string(const std::string& path) const;  // "path:12: memory.min_available: ..."
};

struct ConfigLoad {
    std::optional<Config> config;    // set only when errors is empty
    std::vector<ConfigError> errors;
};

ConfigLoad parse_config(std::string_view toml_text, const std::string& source_path);

// The config decides which file the daemon (root) writes 'f' to, so only root
// may control it: load_config refuses a file that is not a regular file, not
// owned by root (or by the daemon's own user, which gains nothing), or writable
// by group or others, unless allow_insecure (--allow-insecure-config, tests).
struct ConfigFileCheck {
    bool allow_insecure = false;
};
ConfigLoad load_config(const std::string& path, ConfigFileCheck check = {});
// Why a file with this owner and mode must not be trusted, or "" when it may.
std::string insecure_config_reason(unsigned uid, unsigned mode, bool regular_file,
                                   unsigned daemon_uid);

// Levels this node cannot have: an absolute min/warn/recover level at or above
// MemTotal (MemAvailable never gets there: a min level would trigger on a healthy
// node, a recover level would never end an episode). Percentages always fit.
// Each error names the key, its line and MemTotal.
std::vector<ConfigError> check_against_mem_total(const Config& c, uint64_t mem_total);

// --check-config: check_against_mem_total with the MemTotal of the host whose
// /proc is proc_root. note says what was checked ("levels checked against this
// host's MemTotal (15.6 GiB, /proc/meminfo)") or why not (no errors then).
struct HostCheck {
    std::vector<ConfigError> errors;
    std::string note;
};
HostCheck check_against_host(const Config& c, const std::string& proc_root);

// The effective config as TOML, for --check-config.
std::string render_config(const Config& c);

}  // namespace oomguard
