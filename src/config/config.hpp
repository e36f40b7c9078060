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
        std::string sysrq_trigger{defaults::kSysrqTrigger};
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
        bool psi = true;  // wake on /proc/pressure/memory stalls
    } poll;

    struct Paths {
        std::string proc{defaults::kProcRoot};
        std::string cgroup{defaults::kCgroupRoot};
        std::string kmsg = "/dev/kmsg";
        // The runtimes' state, for container names without kubelet's log links.
        std::string containerd_state{defaults::kContainerdState};
        std::string crio_storage{defaults::kCrioStorage};
        // The instance lock (flock): a second oomguard on the node refuses to
        // start. "": none. The unit's RuntimeDirectory=oomguard creates the dir.
        std::string lock = "/run/oomguard/lock";
    } paths;

    struct Kubernetes {
        bool log_heaviest = true;
        std::string pod_logs_dir{defaults::kPodLogsDir};
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

    std::string source_path;  // the main file (for messages)
    // Every file read, in the order applied: the main file, then the drop-ins.
    std::vector<std::string> sources;
    struct Origin {
        std::string file;
        int line = 0;
    };
    // Where each key that was set got its value ("memory.min_available" ->
    // 50-fleet.toml:3), for errors found later (check_against_mem_total).
    std::map<std::string, Origin> key_origins;
};

struct ConfigError {
    std::string key;  // "memory.min_available"
    int line = 0;     // 0 when unknown
    std::string message;
    std::string file;  // the file the error is in; "" = the path given to to_string
    // "file:12: memory.min_available: ..." (file, or path when file is "").
    std::string to_string(const std::string& path) const;
};

struct ConfigLoad {
    std::optional<Config> config;  // set only when errors is empty
    std::vector<ConfigError> errors;
};

// One file over the defaults.
ConfigLoad parse_config(std::string_view toml_text, const std::string& source_path);

// The pieces parse_config and load_config are made of: apply one file's keys
// over c (a later file overrides an earlier one key by key), then, once every
// file is applied, the checks between keys. Errors name source_path.
void apply_config_text(std::string_view toml_text, const std::string& source_path, Config& c,
                       std::vector<ConfigError>& errors);
void check_config_relations(const Config& c, std::vector<ConfigError>& errors);

// The config decides which file the daemon (root) writes 'f' to, so only root
// may control it: load_config refuses a file that is not a regular file, not
// owned by root (or by the daemon's own user, which gains nothing), or writable
// by group or others, unless allow_insecure (--allow-insecure-config, tests).
//
// Drop-ins: every *.toml in the drop-in directory (default: the config's path
// with ".toml" replaced by ".d", so /etc/oomguard.toml reads /etc/oomguard.d/),
// applied in lexical order over the main file, so that a fleet tool can set one
// key without touching the conffile. The directory and each file get the same
// ownership check; a missing directory is no error.
struct ConfigFileCheck {
    // A constructor, so that {allow_insecure} stays a complete initializer.
    ConfigFileCheck(bool insecure = false, std::optional<std::string> dir = std::nullopt)
        : allow_insecure(insecure), dropin_dir(std::move(dir)) {}
    bool allow_insecure;
    std::optional<std::string> dropin_dir;  // unset: dropin_dir_for(path)
};
ConfigLoad load_config(const std::string& path, ConfigFileCheck check = {});
std::string dropin_dir_for(const std::string& config_path);
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
    uint64_t mem_total = 0;  // 0: not read
};
HostCheck check_against_host(const Config& c, const std::string& proc_root);

// --check-config: each level as this host resolves it, one comment line each
// ("# min_available = 5% = 1.2 GiB of MemTotal 24 GiB"), given the levels the
// policy resolves (min, warn: 0 = none, recover), and warnings for levels that
// make oomguard act while much of the node is still available (min_available
// above kHighLevelPercent of MemTotal).
constexpr double kHighLevelPercent = 25.0;
struct ResolvedLevels {
    std::vector<std::string> lines;
    std::vector<std::string> warnings;
};
ResolvedLevels describe_levels(const Config& c, uint64_t mem_total, uint64_t min, uint64_t warn,
                               uint64_t recover);

// The effective config as TOML, for --check-config.
std::string render_config(const Config& c);

}  // namespace oomguard
