#include "node_tree.hpp"

#include <sys/stat.h>

#include "support/cgroupfs.hpp"
#include "support/pod_logs.hpp"

namespace oomguard::bustest {

NodeTree::NodeTree(unsigned pods) {
    using namespace oomguard::test;
    ::chmod(dir.c_str(), 0755);
    FakeCgroupFs fs(cgroup_root, CgroupVersion::V2);
    FakePodLogs logs(dir + "/logs");
    KubeLayout L;
    fs.cgroup(L.kubepods(), 0);
    fs.cgroup(L.qos_dir(QosClass::Burstable), 0);
    for (unsigned i = 0; i < pods; ++i) {
        const std::string pod = L.pod_dir(QosClass::Burstable, pod_uid(i));
        const uint64_t ws = (i + 1) * MiB;
        fs.cgroup(pod, ws, 0, 4 * ws);
        fs.cgroup(pod + "/" + L.container_name(container_id(i)), ws, 0, 4 * ws);
        const std::string ns = "ns-" + std::to_string(i % 10);
        const std::string name = "pod-" + std::to_string(i);
        logs.pod(ns, name, pod_uid(i));
        logs.container(ns, name, pod_uid(i), "app", container_id(i));
    }
}

}  // namespace oomguard::bustest
