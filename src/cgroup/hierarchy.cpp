#include "cgroup/hierarchy.hpp"

#include <unistd.h>

#include <string_view>

#include "util/small_file.hpp"

namespace oomguard {
namespace {

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

bool lists_memory(const std::string& controllers) {
    size_t i = 0;
    while (i < controllers.size()) {
        size_t j = controllers.find_first_of(" \n", i);
        if (j == std::string::npos) j = controllers.size();
        if (std::string_view(controllers).substr(i, j - i) == "memory") return true;
        i = j + 1;
    }
    return false;
}

std::string strip_slash(std::string s) {
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    return s;
}

}  // namespace

Result<CgroupHierarchy> detect_cgroup_hierarchy(const std::string& cgroup_root) {
    const std::string root = strip_slash(cgroup_root);
    if (!exists(root)) return Error::sys(errno, "cgroup root " + root);
    CgroupHierarchy h;
    if (auto controllers = read_small_file(root + "/cgroup.controllers")) {
        if (lists_memory(*controllers)) {
            h.version = CgroupVersion::V2;
            h.memory_root = root;
            h.layout = "cgroup v2 (unified)";
            return h;
        }
        return Error::logic(
            "cgroup root " + root +
            " is cgroup v2 without the memory controller (it is bound to a v1 hierarchy; "
            "point [paths] cgroup at its parent)");
    }
    if (exists(root + "/memory.usage_in_bytes")) {
        h.version = CgroupVersion::V1;
        h.memory_root = root;
        h.layout = "cgroup v1 (memory controller at " + root + ")";
        return h;
    }
    if (exists(root + "/memory/memory.usage_in_bytes")) {
        h.version = CgroupVersion::V1;
        h.memory_root = root + "/memory";
        if (read_small_file(root + "/unified/cgroup.controllers"))
            h.layout = "hybrid (memory controller on cgroup v1 at " + h.memory_root +
                       ", cgroup v2 at " + root + "/unified without memory)";
        else
            h.layout = "cgroup v1 (memory controller at " + h.memory_root + ")";
        return h;
    }
    // Hybrid where systemd left memory to the v2 hierarchy.
    if (auto unified = read_small_file(root + "/unified/cgroup.controllers");
        unified && lists_memory(*unified)) {
        h.version = CgroupVersion::V2;
        h.memory_root = root + "/unified";
        h.layout = "hybrid (memory controller on cgroup v2 at " + h.memory_root + ")";
        return h;
    }
    return Error::logic(
        "no memory controller under cgroup root " + root +
        ": looked for cgroup.controllers listing memory (v2), memory.usage_in_bytes (v1), "
        "memory/ (v1 or hybrid) and unified/ (hybrid)");
}

}  // namespace oomguard
