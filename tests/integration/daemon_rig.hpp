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

}  // namespace oomguard::test::daemon_rig
