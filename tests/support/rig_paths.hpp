// What keeps a rig's daemon off the host besides --proc-root: a fake cgroup v2
// root with the memory controller and no pods (--cgroup-root), an empty kmsg
// file ([paths] kmsg) and an instance lock of its own ([paths] lock), all in
// the rig's temp dir. Without them the daemon would rank the host's real
// cgroups, read the host's /dev/kmsg and take the host's /run/oomguard/lock.
#pragma once

#include <string>
#include <vector>

namespace oomguard::test {

struct RigPaths {
    // Creates <dir>/cgroup and <dir>/kmsg (left alone when they exist).
    explicit RigPaths(const std::string& dir);
    std::string cgroup_root, kmsg, lock;

    // {"--cgroup-root", cgroup_root}
    std::vector<std::string> args() const;
    // Lines for a [paths] table: kmsg and lock, each unless `set` (the
    // test's own [paths] lines) already has that key.
    std::string toml(const std::string& set = "") const;
    // The config with toml() added to its [paths] table (or a [paths] table
    // added): what every rig writes, so a test's own [paths] keys still win.
    std::string apply(const std::string& config) const;
};

}  // namespace oomguard::test
