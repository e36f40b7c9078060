// Which cgroup hierarchy holds the memory controller under a cgroup root:
//   v2 unified:  <root>/cgroup.controllers lists "memory";
//   v1:          <root>/memory/memory.usage_in_bytes (or <root> is that directory);
//   hybrid:      v1 memory as above plus <root>/unified (v2 without memory).
// The root may also be a sub-cgroup of either (how tests point the daemon at a
// private kubepods tree: --cgroup-root=/sys/fs/cgroup/memory/<test parent>).
#pragma once

#include <string>

#include "util/result.hpp"

namespace oomguard {

enum class CgroupVersion { V1, V2 };

struct CgroupHierarchy {
    CgroupVersion version = CgroupVersion::V2;
    std::string memory_root;  // the directory whose descendants we read
    std::string layout;       // "cgroup v2 (unified)", "cgroup v1", "hybrid: ..."

    // File names that differ between the versions.
    const char* usage_file() const {
        return version == CgroupVersion::V1 ? "memory.usage_in_bytes" : "memory.current";
    }
    const char* limit_file() const {
        return version == CgroupVersion::V1 ? "memory.limit_in_bytes" : "memory.max";
    }
    // Hierarchical inactive_file in memory.stat.
    const char* inactive_file_key() const {
        return version == CgroupVersion::V1 ? "total_inactive_file" : "inactive_file";
    }
};

// Errors name the root and what was looked for.
Result<CgroupHierarchy> detect_cgroup_hierarchy(const std::string& cgroup_root);

}  // namespace oomguard
