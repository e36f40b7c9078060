// CgroupTree: the cgroups the ranking watches, with their directories and
// memory files kept open. On a Kubernetes node: the pod cgroups under kubepods
// (QoS levels walked); elsewhere the top-level cgroups and the children of
// top-level slices.
//
// Why a cache: reading a usage through a kept fd (pread) costs ~1 us, a path
// lookup and open several times that, on every refresh of hundreds of pods.
// Cost: every node keeps a dirfd and two open files (usage, memory.stat). The
// directories are re-listed only when a watched directory's link count changes
// (kernfs counts subdirectories), when a cgroup vanished, or when the caller
// asks (the monitor's structure_interval).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cgroup/hierarchy.hpp"
#include "cgroup/kubepods_path.hpp"
#include "cgroup/memcg_stats.hpp"
#include "util/result.hpp"

namespace oomguard {

enum class CgroupKind {
    TopLevel,  // a top-level cgroup of a host without kubepods
    Pod,
    Container,
    Sandbox,  // the pod's pause container
    Conmon,   // cri-o's conmon, not a container
    Unknown,  // under kubepods but not understood: `note` says why
};
const char* to_string(CgroupKind k);

struct Unclassified {
    std::string path;
    std::string reason;
};

// An owned file descriptor.
struct Fd {
    int fd = -1;
    Fd() = default;
    explicit Fd(int f) : fd(f) {}
    Fd(Fd&& o) noexcept : fd(o.fd) { o.fd = -1; }
    Fd& operator=(Fd&& o) noexcept;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    void reset();
};

// openat() of "/a/b" relative to dirfd's directory (O_DIRECTORY).
int open_dir_at(int dirfd, const std::string& rel);
// Sorted subdirectory names of an open directory; empty when it vanished.
void list_subdirs(int dirfd, std::vector<std::string>& out);

// The kubepods candidates tried, relative to the memory root, in order.
extern const char* const kKubepodsCandidates[];

struct TreeNode {
    std::string rel;  // "/kubepods/burstable/pod<uid>"
    Fd dir;
    MemcgFiles files;  // closed when the fd limit was reached: reads then use openat
    CgroupKind kind = CgroupKind::Unknown;
    QosClass qos = QosClass::Unknown;
    CgroupDriver driver = CgroupDriver::Unknown;
    std::string pod_uid;
};

class CgroupTree {
public:
    static constexpr uint32_t kNew = UINT32_MAX;

    // Detects the hierarchy under cgroup_root and finds kubepods (`kubepods`
    // relative to the memory root, or "" for the candidates).
    Status open(const std::string& cgroup_root, const std::string& kubepods);
    void close();
    bool is_open() const { return root_.fd >= 0; }
    int root_fd() const { return root_.fd; }
    const CgroupHierarchy& hierarchy() const { return hierarchy_; }
    bool kubernetes() const { return kubepods_.fd >= 0; }
    int kubepods_fd() const { return kubepods_.fd; }
    const std::string& kubepods_path() const { return kubepods_rel_; }
    CgroupDriver driver() const { return driver_; }
    // Looks for kubepods again (kubelet may start after us).
    void find_kubepods();

    // A watched directory gained or lost a subdirectory.
    bool changed() const;
    // Re-lists the tree. Survivors keep their open files; for each node of the
    // new list, the index it had before (kNew: new).
    std::vector<uint32_t> restructure();
    std::vector<TreeNode>& nodes() { return nodes_; }
    const std::vector<TreeNode>& nodes() const { return nodes_; }
    const std::vector<Unclassified>& unclassified() const { return unclassified_; }

private:
    struct Watched {
        std::string rel;
        Fd dir;
        nlink_t nlink = 0;
    };
    CgroupHierarchy hierarchy_;
    std::string kubepods_setting_;
    Fd root_;
    Fd kubepods_;
    std::string kubepods_rel_;
    CgroupDriver driver_ = CgroupDriver::Unknown;
    std::vector<TreeNode> nodes_;
    std::vector<Watched> watched_;
    std::vector<Unclassified> unclassified_;
};

}  // namespace oomguard
