// The cgroup daemon tests' rig: a node's paths, the config the real binary reads
// (threshold 2 GiB, the trigger a file of the test's own) and its arguments.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "fixture.hpp"
#include "real_cgroup.hpp"
#include "support/rig_paths.hpp"

// Skips the test where real v1 memory cgroups cannot be made (not root, no v1).
namespace oomguard::test::daemon_cgroup_rig {

struct NodePaths {
    NodePaths(std::string cg, std::string p, std::string logs, std::string k, std::string trig,
              std::string m = "sysrq")
        : cgroup_root(std::move(cg)),
          proc(std::move(p)),
          pod_logs(std::move(logs)),
          kmsg(std::move(k)),
          trigger(std::move(trig)),
          mode(std::move(m)) {}
    std::string cgroup_root, proc, pod_logs, kmsg, trigger;
    std::string mode;
    std::string extra_kubernetes;
    std::string extra_action;  // more [action] keys
    std::string extra;         // more sections
    std::string repeat_after = "1h";
    std::string lock;  // [paths] lock; unset: <tmp>/oomguard.lock
};

// Written through the support library's config writer (RigPaths::apply): the
// lock is the one in tmp (<tmp>/oomguard.lock) unless the test sets its own,
// never the host's /run/oomguard/lock; the config's kmsg and cgroup win.
inline std::string write_config(const TempDir& tmp, const NodePaths& s) {
    const std::string path = tmp / "oomguard.toml";
    const std::string text =
        "[memory]\nmin_available = \"2GiB\"\n"
        "[action]\nmode = \"" +
        s.mode + "\"\nsysrq_trigger = \"" + s.trigger + "\"\nrepeat_after = \"" + s.repeat_after +
        "\"\n" + s.extra_action +
        "\n"
        "[poll]\npsi = false\nmax_interval = \"50ms\"\n"
        "[paths]\nproc = \"" +
        s.proc + "\"\ncgroup = \"" + s.cgroup_root + "\"\nkmsg = \"" + s.kmsg + "\"\n" +
        (s.lock.empty() ? "" : "lock = \"" + s.lock + "\"\n") + "[kubernetes]\npod_logs_dir = \"" +
        s.pod_logs + "\"\n" + s.extra_kubernetes + "\n" + s.extra;
    write_file(path, RigPaths(tmp.path()).apply(text));
    return path;
}

// No --cgroup-root (the config's [paths] cgroup is the node's) and no bus
// flag: DaemonProcess adds a dead system bus address (support/process.hpp).
inline std::vector<std::string> args(const std::string& config, bool dry_run) {
    std::vector<std::string> a = {"--config", config, "--log-target=stderr", "--no-mlock"};
    if (dry_run) a.push_back("--dry-run");
    return a;
}

inline std::string ctr_path(const std::string& qos, unsigned n, unsigned c) {
    return "kubepods/" + (qos.empty() ? "" : qos + "/") + "pod" + pod_uid(n) + "/" +
           container_id(c);
}

}  // namespace oomguard::test::daemon_cgroup_rig
