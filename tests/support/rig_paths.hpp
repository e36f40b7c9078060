// What keeps a rig's daemon off the host besides --proc-root: a fake cgroup v2
// root with the memory controller and no pods (--cgroup-root), an empty kmsg
// file ([paths] kmsg) and an instance lock of its own ([paths] lock), all in
// the rig's temp dir. Without them the daemon would rank the host's real
// cgroups, read the host's /dev/kmsg, take the host's /run/oomguard/lock and
// register on the host's system bus (env()). DaemonProcess adds what a test
// leaves out from a RigPaths of its own (support/process.hpp).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace oomguard::test {

struct RigPaths {
    // Creates <dir>/cgroup and <dir>/kmsg (left alone when they exist).
    explicit RigPaths(const std::string& dir);
    std::string cgroup_root, kmsg, lock, no_bus;
    std::string trigger;  // a sysrq trigger file, for a config that names none

    // {"--cgroup-root", cgroup_root}: flags for the daemon.
    std::vector<std::string> args() const;
    // DBUS_SYSTEM_BUS_ADDRESS at a socket in the rig's dir that nobody
    // listens on: the daemon must not register on the host's system bus.
    std::map<std::string, std::string> env() const;
    // What every rig starts the daemon with: --config, --proc-root, the log on
    // stderr, no mlock, and args().
    std::vector<std::string> daemon_args(const std::string& config,
                                         const std::string& proc_root) const;
    // env() and NOTIFY_SOCKET.
    std::map<std::string, std::string> env(const std::string& notify_socket) const;
    // Lines for a [paths] table: kmsg and lock, each unless `set` (the
    // test's own [paths] lines) already has that key.
    std::string toml(const std::string& set = "") const;
    // The config with toml() added to its [paths] table (or a [paths] table
    // added): what every rig writes, so a test's own [paths] keys still win.
    std::string apply(const std::string& config) const;
    // Whether the config's [paths] table sets `key` (kmsg, lock, cgroup, ...).
    static bool sets(const std::string& config, const std::string& key);
};

}  // namespace oomguard::test
