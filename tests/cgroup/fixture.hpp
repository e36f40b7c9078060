// Test fixtures: fake cgroupfs trees (v1 and v2, both kubelet drivers, the
// common runtimes), a fake /var/log/pods, and a fake /proc, all built by the
// tests in a temporary directory.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "cgroup/hierarchy.hpp"
#include "cgroup/kubepods_path.hpp"

namespace oomguard::test {

inline void makeDir(const std::string& path) {
    // mkdir -p
    for (size_t i = 1; i <= path.size(); ++i) {
        if (i == path.size() || path[i] == '/') {
            std::string p = path.substr(0, i);
            if (::mkdir(p.c_str(), 0755) != 0 && errno != EEXIST)
                throw std::runtime_error("mkdir " + p + ": " + std::strerror(errno));
        }
    }
}

inline void makeFile(const std::string& path, const std::string& content) {
    size_t slash = path.rfind('/');
    if (slash != std::string::npos && slash > 0) makeDir(path.substr(0, slash));
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("open " + path + ": " + std::strerror(errno));
    if (::write(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size()))
        throw std::runtime_error("write " + path);
    ::close(fd);
}

inline std::string readFile(const std::string& path) {
    std::string out;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    ::close(fd);
    return out;
}

inline void removeTree(const std::string& path) {
    nftw(
        path.c_str(),
        [](const char* p, const struct stat*, int, struct FTW*) {
            return ::remove(p) == 0 ? 0 : 0;
        },
        32, FTW_DEPTH | FTW_PHYS);
}

// Fixture trees go to /dev/shm (thousands of small files; a shared disk is
// slow). Page cache tests need a disk filesystem: TempDir(kOnDisk).
constexpr const char* kOnDisk = "/var/tmp";

class TempDir {
public:
    explicit TempDir(const char* base = nullptr) {
        if (!base) base = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        std::string tmpl = std::string(base) + "/oomguard-cgtest-XXXXXX";
        if (!mkdtemp(tmpl.data()))
            throw std::runtime_error("mkdtemp in " + std::string(base) + " failed");
        path_ = tmpl;
    }
    ~TempDir() { removeTree(path_); }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

private:
    std::string path_;
};

constexpr uint64_t MiB = 1ull << 20;
constexpr uint64_t kV1Unlimited = 9223372036854771712ull;  // PAGE_COUNTER_MAX * 4096

// A fake cgroup filesystem root. V1 puts the memory controller at <root>/memory
// (with <root>/unified for the hybrid layout); V2 is unified at <root>.
class FakeCgroupFs {
public:
    FakeCgroupFs(std::string root, CgroupVersion v, bool hybrid = false)
        : root_(std::move(root)), v_(v) {
        if (v == CgroupVersion::V2) {
            makeFile(root_ + "/cgroup.controllers",
                     "cpuset cpu io memory hugetlb pids rdma misc\n");
            mem_ = root_;
        } else {
            mem_ = root_ + "/memory";
            makeFile(mem_ + "/memory.usage_in_bytes", "1000000000\n");
            makeFile(mem_ + "/memory.stat", stat_text(0, 0));
            if (hybrid) makeFile(root_ + "/unified/cgroup.controllers", "");
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
        makeDir(d);
        if (v_ == CgroupVersion::V1) {
            makeFile(d + "/memory.usage_in_bytes", std::to_string(usage) + "\n");
            makeFile(d + "/memory.limit_in_bytes",
                     std::to_string(limit ? limit : kV1Unlimited) + "\n");
        } else {
            makeFile(d + "/memory.current", std::to_string(usage) + "\n");
            makeFile(d + "/memory.max", limit ? std::to_string(limit) + "\n" : "max\n");
            makeFile(d + "/memory.oom.group", std::to_string(oom_group) + "\n");
        }
        makeFile(d + "/memory.stat", stat_text(usage, inactive_file));
        if (::access((d + "/cgroup.procs").c_str(), F_OK) != 0) makeFile(d + "/cgroup.procs", "");
    }
    void set_usage(const std::string& rel, uint64_t usage, uint64_t inactive_file = 0) const {
        const std::string d = mem_ + "/" + rel;
        makeFile(d + (v_ == CgroupVersion::V1 ? "/memory.usage_in_bytes" : "/memory.current"),
                 std::to_string(usage) + "\n");
        makeFile(d + "/memory.stat", stat_text(usage, inactive_file));
    }
    void procs(const std::string& rel, const std::string& pids) const {
        makeFile(mem_ + "/" + rel + "/cgroup.procs", pids);
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

// A fake kubelet log tree: <dir>/pods/<ns>_<name>_<uid>/<container>/0.log and
// <dir>/containers/<pod>_<ns>_<container>-<id>.log symlinks.
class FakePodLogs {
public:
    explicit FakePodLogs(std::string dir) : dir_(std::move(dir)) {
        makeDir(pods_dir());
        makeDir(dir_ + "/containers");
    }
    std::string pods_dir() const { return dir_ + "/pods"; }
    void pod(const std::string& ns, const std::string& name, const std::string& uid) const {
        makeDir(pods_dir() + "/" + ns + "_" + name + "_" + uid);
    }
    // link=false: only the pod's log directory, no containers/ symlink.
    void container(const std::string& ns, const std::string& pod, const std::string& uid,
                   const std::string& name, const std::string& id, bool link = true) const {
        const std::string target =
            pods_dir() + "/" + ns + "_" + pod + "_" + uid + "/" + name + "/0.log";
        makeFile(target, "");
        if (link) {
            std::string l = dir_ + "/containers/" + pod + "_" + ns + "_" + name + "-" + id + ".log";
            if (::symlink(target.c_str(), l.c_str()) != 0 && errno != EEXIST)
                throw std::runtime_error("symlink " + l);
        }
    }

private:
    std::string dir_;
};

// A fake /proc: meminfo and <pid>/comm.
class FakeProc {
public:
    explicit FakeProc(std::string dir) : dir_(std::move(dir)) { meminfo(8ull << 30, 4ull << 30); }
    const std::string& dir() const { return dir_; }
    void meminfo(uint64_t total, uint64_t available) const {
        makeFile(dir_ + "/meminfo", "MemTotal:       " + std::to_string(total / 1024) +
                                        " kB\nMemFree:        " + std::to_string(available / 1024) +
                                        " kB\nMemAvailable:   " + std::to_string(available / 1024) +
                                        " kB\n");
    }
    void comm(int pid, const std::string& name) const {
        makeFile(dir_ + "/" + std::to_string(pid) + "/comm", name + "\n");
    }

private:
    std::string dir_;
};

}  // namespace oomguard::test
