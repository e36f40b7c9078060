// The cgroup daemon tests' rig: a node's paths, the config the real binary reads
// (threshold 2 GiB, the trigger a file of the test's own), its arguments, and
// FakeNode, the fake node most of the tests start it on.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fixture.hpp"
#include "real_cgroup.hpp"
#include "support/rig_paths.hpp"

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

// kubelet's cgroupfs-driver names: qos "" is Guaranteed (right under kubepods).
inline std::string pod_path(const std::string& qos, unsigned n) {
    return "kubepods/" + (qos.empty() ? "" : qos + "/") + "pod" + pod_uid(n);
}
inline std::string ctr_path(const std::string& qos, unsigned n, unsigned c) {
    return pod_path(qos, n) + "/" + container_id(c);
}

// The set-up most daemon tests share, once: a temp dir with a fake cgroupfs,
// kubelet pod logs and /proc (8 GiB, `available` of it: by default below the
// config's 2 GiB threshold), empty kmsg and trigger files, and the NodePaths
// to them. A test adds its cgroups, edits `paths` and start()s the daemon,
// which is declared last: it is stopped before the node's files go.
struct FakeNode {
    explicit FakeNode(CgroupVersion v, std::string mode = "sysrq", uint64_t available = 1ull << 30)
        : fs(tmp / "cgroup", v),
          paths(fs.root(), proc.dir(), logs.pods_dir(), tmp / "kmsg", tmp / "trigger",
                std::move(mode)) {
        proc.meminfo(8ull << 30, available);
        makeFile(paths.kmsg, "");
        makeFile(paths.trigger, "");
    }

    // A pod_path() pod with one container (id n), both of `bytes`, and the
    // pod's log directory. Returns the container's cgroup.
    std::string pod(const std::string& qos, unsigned n, const std::string& ns,
                    const std::string& name, uint64_t bytes) const {
        fs.cgroup(pod_path(qos, n), bytes);
        fs.cgroup(ctr_path(qos, n, n), bytes);
        logs.pod(ns, name, pod_uid(n));
        return ctr_path(qos, n, n);
    }
    // The only task of `cgroup`, and its oom_score_adj in the fake /proc.
    void task(const std::string& cgroup, int pid, int oom_score_adj = 1000) const {
        fs.procs(cgroup, std::to_string(pid) + "\n");
        makeFile(proc.dir() + "/" + std::to_string(pid) + "/oom_score_adj",
                 std::to_string(oom_score_adj) + "\n");
    }
    // The real binary on write_config(paths).
    DaemonProcess& start(bool dry_run) {
        daemon.start(args(write_config(tmp, paths), dry_run));
        return daemon;
    }

    TempDir tmp;
    FakeCgroupFs fs;
    FakePodLogs logs{tmp / "log"};
    FakeProc proc{tmp / "proc"};
    NodePaths paths;
    DaemonProcess daemon;
};

}  // namespace oomguard::test::daemon_cgroup_rig
