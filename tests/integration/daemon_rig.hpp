// The integration tests' rig: the real oomguard binary against a fake proc root,
// a trigger FIFO and a NOTIFY_SOCKET of the test's own, hermetic by default.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "support/support.hpp"

namespace oomguard::test::daemon_rig {

struct Rig {
    TempDir dir;
    FakeProc proc{dir.file("proc"), 16384 * MiB};
    RigPaths paths{dir.path()};  // hermetic: no host cgroups, kmsg, lock or system bus
    std::optional<TriggerFifo> fifo;
    NotifySocket notify{dir.file("notify.sock")};
    DaemonProcess daemon;

    std::string config(const std::string& memory, const std::string& action_extra = "",
                       const std::string& trigger = "") const {
        std::string t = trigger.empty() ? dir.file("trigger.fifo") : trigger;
        return "[memory]\n" + memory + "\n[action]\nsysrq_trigger = \"" + t + "\"\n" +
               action_extra +
               "\n[poll]\nmin_interval = \"1ms\"\nmax_interval = \"200ms\"\npsi = false\n"
               "[kubernetes]\nlog_heaviest = false\n";
    }

    // With the rig's kmsg and lock unless the text names its own.
    void write_config(const std::string& cfg) const {
        dir.write("oomguard.toml", paths.apply(cfg));
    }
    std::vector<std::string> args(const std::string& proc_root) const {
        return paths.daemon_args(dir.file("oomguard.toml"), proc_root);
    }
    std::map<std::string, std::string> env() const { return paths.env(notify.path()); }

    void start(const std::string& cfg, std::vector<std::string> extra_args = {},
               std::map<std::string, std::string> env = {}) {
        if (!fifo) fifo.emplace(dir.file("trigger.fifo"));
        write_config(cfg);
        std::vector<std::string> args = this->args(proc.dir());
        args.insert(args.end(), extra_args.begin(), extra_args.end());
        for (const auto& [k, v] : this->env()) env.emplace(k, v);
        daemon.start(args, env, dir.file("daemon.log"));
        ASSERT_TRUE(notify.wait_for("READY=1", 5s)) << daemon.log();
    }
};

inline std::string poll_config(const Rig& r, const std::string& memory, const std::string& action,
                               const std::string& poll) {
    return "[memory]\n" + memory + "\n[action]\nsysrq_trigger = \"" + r.dir.file("trigger.fifo") +
           "\"\n" + action + "\n[poll]\npsi = false\n" + poll +
           "\n[kubernetes]\nlog_heaviest = false\n";
}

// The two kmsg records of an OOM kill as the kernel writes them (seq and seq+1):
// a memcg kill (cgroup at its limit) or, with memcg false, a node-wide one.
inline std::string kmsg_oom_kill(int seq, int pid, const std::string& cgroup, bool memcg = true,
                                 const std::string& task = "hog") {
    const std::string s = std::to_string(seq), s1 = std::to_string(seq + 1),
                      p = std::to_string(pid), at = std::to_string(2000000 + seq * 1000);
    const std::string head = (memcg ? "6," : "4,") + s + "," + at + ",-;oom-kill:constraint=" +
                             (memcg ? "CONSTRAINT_MEMCG" : "CONSTRAINT_NONE") +
                             ",nodemask=(null),cpuset=/,mems_allowed=0," +
                             (memcg ? "oom_memcg=" + cgroup + "," : std::string("global_oom,")) +
                             "task_memcg=" + cgroup + ",task=" + task + ",pid=" + p + ",uid=0\n";
    return head + "3," + s1 + "," + at + ",-;" +
           (memcg ? "Memory cgroup out of memory" : "Out of memory") + ": Killed process " + p +
           " (" + task +
           ") total-vm:1000kB, anon-rss:900kB, file-rss:0kB, shmem-rss:0kB, UID:0 "
           "pgtables:10kB oom_score_adj:0\n";
}

// A dry-run config for a bare DaemonProcess (no rig): the runner adds the rest.
inline const char* kBareDryRun =
    "[memory]\nmin_available = \"500MiB\"\n[action]\nmode = \"dry-run\"\n"
    "[poll]\npsi = false\n[kubernetes]\nlog_heaviest = false\n";

// A node for a bare DaemonProcess: a temp dir and a fake proc root (16 GiB).
struct BareNode {
    TempDir d;
    FakeProc proc{d.file("proc"), 16384 * MiB};
    // The daemon's args, with `toml` written as the config c.toml.
    std::vector<std::string> args(const std::string& toml) {
        d.write("c.toml", toml);
        return {"--config", d.file("c.toml"),      "--proc-root",
                proc.dir(), "--log-target=stderr", "--no-mlock"};
    }
};

}  // namespace oomguard::test::daemon_rig
