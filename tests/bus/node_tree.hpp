// A fake Kubernetes node for the bus tests: a cgroup v2 tree with `pods`
// Burstable pods of one container each, and their /var/log/pods directories,
// built with tests/support.
#pragma once

#include <string>

#include "support/files.hpp"

namespace oomguard::bustest {

// Lives in its own directory under /dev/shm (thousands of small files: a disk
// is slow), removed by the destructor.
class NodeTree {
public:
    // Pod i is "ns-<i%10>/pod-<i>", working set (i+1) MiB.
    explicit NodeTree(unsigned pods);
    NodeTree(const NodeTree&) = delete;
    NodeTree& operator=(const NodeTree&) = delete;

private:
    oomguard::test::TempDir tmp_;

public:
    std::string dir = tmp_.path(), cgroup_root = dir + "/cgroup", pod_logs_dir = dir + "/logs/pods";
};

}  // namespace oomguard::bustest
