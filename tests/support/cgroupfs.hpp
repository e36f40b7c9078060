// A fake cgroupfs builder: v1 (with the hybrid layout) and v2 roots, memory
// cgroups with usage, stat, limit and procs, and kubelet's names for pods and
// containers under both drivers and the common runtimes.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "cgroup/hierarchy.hpp"
#include "cgroup/kubepods_path.hpp"
#include "support/files.hpp"

namespace oomguard::test {

constexpr uint64_t kV1Unlimited = 9223372036854771712ull;  // PAGE_COUNTER_MAX * 4096

// A fake cgroup filesystem root. V1 puts the memory controller at <root>/memory
// (with <root>/unified for the hybrid layout); V2 is unified at <root>.
class FakeCgroupFs {
public:
    FakeCgroupFs(std::string root, CgroupVersion v, bool hybrid = false)
        : root_(std::move(root)), v_(v) {
        if (v == CgroupVersion::V2) {
            write_file(root_ + "/cgroup.controllers",
                       "cpuset cpu io memory hugetlb pids rdma misc\n");
            mem_ = root_;
        } else {
            mem_ = root_ + "/memory";
            write_file(mem_ + "/memory.usage_in_bytes", "1000000000\n");
            write_file(mem_ + "/memory.stat", stat_text(0, 0));
            if (hybrid) write_file(root_ + "/unified/cgroup.controllers", "");
        }
    }
    const std::string& root() const { return root_; }
    const std::string& memory_root() const { return mem_; }
    CgroupVersion version() const { return v_; }

    std::string stat_text(uint64_t usage, uint64_t inactive_file) const {
        if (v_ == CgroupVersion::V1) {
            // The local (non-total) inactive_file differs on purpose: the
            // hierarchical total_ value is the one that counts.
            return "cache " + std::to_string(inactive_file) + "\nrss " +
                   std::to_string(usage - inactive_file) +
                   "\ninactive_anon 0\nactive_anon 0\ninactive_file 4096\nactive_file 0\n"
                   "hierarchical_memory_limit 9223372036854771712\ntotal_cache " +
                   std::to_string(inactive_file) + "\ntotal_rss " +
                   std::to_string(usage - inactive_file) +
                   "\ntotal_inactive_anon 0\ntotal_inactive_file " + std::to_string(inactive_file) +
                   "\ntotal_active_file 0\n";
        }
        return "anon " + std::to_string(usage - inactive_file) + "\nfile " +
               std::to_string(inactive_file) + "\ninactive_anon 0\nactive_anon " +
               std::to_string(usage - inactive_file) + "\ninactive_file " +
               std::to_string(inactive_file) + "\nactive_file 0\nunevictable 0\n";
    }

    // A memory cgroup at <memory root>/<rel>. limit: 0 = unlimited. On a real
    // node only container cgroups have memory.oom.group 1 (kubelet via the
    // CRI); kubepods, QoS, pod and sandbox cgroups have 0 (node lab, issue 13).
    void cgroup(const std::string& rel, uint64_t usage, uint64_t inactive_file = 0,
                uint64_t limit = 0, int oom_group = 1) const {
        const std::string d = mem_ + "/" + rel;
        make_dir(d);
        if (v_ == CgroupVersion::V1) {
            write_file(d + "/memory.usage_in_bytes", std::to_string(usage) + "\n");
            write_file(d + "/memory.limit_in_bytes",
                       std::to_string(limit ? limit : kV1Unlimited) + "\n");
        } else {
            write_file(d + "/memory.current", std::to_string(usage) + "\n");
            write_file(d + "/memory.max", limit ? std::to_string(limit) + "\n" : "max\n");
            write_file(d + "/memory.oom.group", std::to_string(oom_group) + "\n");
        }
        write_file(d + "/memory.stat", stat_text(usage, inactive_file));
        if (::access((d + "/cgroup.procs").c_str(), F_OK) != 0) write_file(d + "/cgroup.procs", "");
    }
    void set_usage(const std::string& rel, uint64_t usage, uint64_t inactive_file = 0) const {
        const std::string d = mem_ + "/" + rel;
        write_file(d + (v_ == CgroupVersion::V1 ? "/memory.usage_in_bytes" : "/memory.current"),
                   std::to_string(usage) + "\n");
        write_file(d + "/memory.stat", stat_text(usage, inactive_file));
    }
    void procs(const std::string& rel, const std::string& pids) const {
        write_file(mem_ + "/" + rel + "/cgroup.procs", pids);
    }

private:
    std::string root_, mem_;
    CgroupVersion v_;
};

enum class Runtime { Containerd, Crio, Docker };

// How kubelet names things, per driver and runtime.
struct KubeLayout {
    CgroupDriver driver = CgroupDriver::Cgroupfs;
    Runtime runtime = Runtime::Containerd;

    std::string kubepods() const {
        return driver == CgroupDriver::Systemd ? "kubepods.slice" : "kubepods";
    }
    std::string qos_dir(QosClass q) const {
        if (q == QosClass::Guaranteed) return kubepods();
        const char* n = q == QosClass::Burstable ? "burstable" : "besteffort";
        if (driver == CgroupDriver::Systemd) return kubepods() + "/kubepods-" + n + ".slice";
        return kubepods() + "/" + n;
    }
    std::string pod_dir(QosClass q, const std::string& uid) const {
        if (driver == CgroupDriver::Cgroupfs) return qos_dir(q) + "/pod" + uid;
        std::string u = uid;
        for (char& c : u)
            if (c == '-') c = '_';
        std::string prefix = q == QosClass::Guaranteed  ? "kubepods"
                             : q == QosClass::Burstable ? "kubepods-burstable"
                                                        : "kubepods-besteffort";
        return qos_dir(q) + "/" + prefix + "-pod" + u + ".slice";
    }
    std::string container_name(const std::string& id) const {
        if (driver == CgroupDriver::Cgroupfs) return runtime == Runtime::Crio ? "crio-" + id : id;
        switch (runtime) {
            case Runtime::Containerd:
                return "cri-containerd-" + id + ".scope";
            case Runtime::Crio:
                return "crio-" + id + ".scope";
            case Runtime::Docker:
                return "docker-" + id + ".scope";
        }
        return id;
    }
    std::string conmon_name(const std::string& id) const {
        return driver == CgroupDriver::Systemd ? "crio-conmon-" + id + ".scope"
                                               : "crio-conmon-" + id;
    }
    ContainerRuntime expected_runtime() const {
        if (runtime == Runtime::Crio) return ContainerRuntime::Crio;
        if (driver == CgroupDriver::Cgroupfs) return ContainerRuntime::Unknown;  // a bare id
        return runtime == Runtime::Docker ? ContainerRuntime::Docker : ContainerRuntime::Containerd;
    }
};

// A 64-hex-digit container id derived from a small number.
inline std::string container_id(unsigned n) {
    char buf[65];
    std::snprintf(buf, sizeof buf, "%016x%016x%016x%016x", 0xc0ffeeu + n, n * 7919u, n,
                  0xabcdu + n);
    return buf;
}

// A UUID derived from a small number.
inline std::string pod_uid(unsigned n) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%08x-%04x-4%03x-8%03x-%012x", 0x1234u + n, n & 0xffff,
                  n & 0xfff, (n * 3) & 0xfff, n * 2654435761u);
    return buf;
}

}  // namespace oomguard::test
