// A fake Kubernetes node for the bus tests: a cgroup v2 tree with `pods`
// Burstable pods of one container each, and their /var/log/pods directories,
// built with tests/cgroup/fixture.hpp (kept in its own translation unit: that
// header's TempDir and FakeProc differ from the integration harness's).
#pragma once

#include <string>

namespace oomguard::bustest {

// Lives in its own directory under /dev/shm (thousands of small files: a disk
// is slow), removed by the destructor.
class NodeTree {
public:
    // Pod i is "ns-<i%10>/pod-<i>", working set (i+1) MiB.
    explicit NodeTree(unsigned pods);
    ~NodeTree();
    NodeTree(const NodeTree&) = delete;
    NodeTree& operator=(const NodeTree&) = delete;
    std::string dir, cgroup_root, pod_logs_dir;
};

}  // namespace oomguard::bustest
