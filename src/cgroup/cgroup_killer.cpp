#include "cgroup/cgroup_killer.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

namespace oomguard {
namespace {

Duration now_mono() { return std::chrono::steady_clock::now().time_since_epoch(); }

int qos_rank(QosClass q) {
    switch (q) {
        case QosClass::BestEffort:
            return 0;
        case QosClass::Burstable:
            return 1;
        case QosClass::Guaranteed:
            return 2;
        case QosClass::Unknown:
            return 3;
    }
    return 3;
}

// Appends the pids of cgroup.procs of dirfd and its descendants (depth-bounded).
void collect_pids(int dirfd, std::vector<pid_t>& out, int depth) {
    int fd = ::openat(dirfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        std::string text;
        char buf[4096];
        ssize_t n;
        while ((n = ::read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
        ::close(fd);
        size_t i = 0;
        while (i < text.size()) {
            long v = 0;
            bool any = false;
            while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
                v = v * 10 + (text[i++] - '0');
                any = true;
            }
            if (any && v > 0) out.push_back(static_cast<pid_t>(v));
            ++i;
        }
    }
    if (depth <= 0) return;
    int dfd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return;
    DIR* d = fdopendir(dfd);
    if (!d) {
        ::close(dfd);
        return;
    }
    while (dirent* e = readdir(d)) {
        if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
        int child = ::openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (child < 0) continue;
        collect_pids(child, out, depth - 1);
        ::close(child);
    }
    closedir(d);
}

}  // namespace

bool path_inside(std::string_view path, std::string_view kubepods) {
    if (kubepods.empty() || path.size() <= kubepods.size() + 1) return false;
    if (path.substr(0, kubepods.size()) != kubepods || path[kubepods.size()] != '/') return false;
    size_t i = kubepods.size();
    while (i < path.size()) {
        size_t j = path.find('/', i + 1);
        if (j == std::string_view::npos) j = path.size();
        std::string_view part = path.substr(i + 1, j - i - 1);
        if (part.empty() || part == "." || part == "..") return false;
        i = j;
    }
    return true;
}

VictimChoice choose_victim(CgroupMonitor& monitor, const KillPolicy& policy) {
    VictimChoice v;
    if (!monitor.kubernetes()) {
        v.why_none = "no kubepods cgroup: kill-cgroup only kills Kubernetes containers";
        return v;
    }
    std::vector<CgroupInfo> pods = monitor.ranked();  // heaviest first
    std::stable_sort(pods.begin(), pods.end(), [](const CgroupInfo& a, const CgroupInfo& b) {
        return qos_rank(a.qos) < qos_rank(b.qos);
    });
    auto skip = [&](const CgroupInfo& p, const std::string& why) {
        if (v.skipped.size() < 8) v.skipped.push_back(p.display_name() + ": " + why);
    };
    size_t considered = 0;
    for (auto& pod : pods) {
        if (pod.kind != CgroupKind::Pod) continue;
        ++considered;
        if (pod.qos == QosClass::Unknown) {
            skip(pod, "QoS class unknown");
            continue;
        }
        if (pod.qos == QosClass::Guaranteed && !policy.kill_guaranteed) {
            skip(pod, "Guaranteed (kill_guaranteed = false)");
            continue;
        }
        monitor.resolve_names(pod);
        if (!policy.exclude_namespaces.empty()) {
            if (pod.pod_namespace.empty()) {
                // It might be in an excluded namespace: do not risk it.
                skip(pod,
                     "namespace unknown (no pod log directory), cannot rule out an excluded "
                     "namespace");
                continue;
            }
            if (std::find(policy.exclude_namespaces.begin(), policy.exclude_namespaces.end(),
                          pod.pod_namespace) != policy.exclude_namespaces.end()) {
                skip(pod, "namespace " + pod.pod_namespace + " is excluded");
                continue;
            }
        }
        for (auto& c : monitor.containers(pod)) {
            if (c.kind != CgroupKind::Container) continue;
            v.found = true;
            v.pod = pod;
            v.container = std::move(c);
            return v;
        }
        skip(pod, "no container cgroup to kill");
    }
    v.why_none = considered ? "no eligible pod among " + std::to_string(considered) : "no pods";
    return v;
}

KillOutcome kill_container_cgroup(CgroupMonitor& monitor, const CgroupInfo& container,
                                  Duration bound) {
    KillOutcome o;
    if (!monitor.configured() || !monitor.kubernetes()) {
        o.error = "no kubepods cgroup";
        return o;
    }
    KubePath kp = classify_cgroup_path(container.path);
    if (!path_inside(container.path, monitor.kubepods_path()) || kp.kind != KubeKind::Container) {
        o.error = "refusing to kill " + container.path + ": not a container cgroup under " +
                  monitor.kubepods_path();
        return o;
    }
    const char* rel = container.path.c_str();
    while (*rel == '/') ++rel;
    int dirfd = ::openat(monitor.root_fd(), rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        o.error = container.path + ": " + std::strerror(errno);
        return o;
    }
    o = kill_cgroup_at(dirfd, monitor.hierarchy().version, container.path, bound);
    ::close(dirfd);
    return o;
}

KillOutcome kill_cgroup_at(int dirfd, CgroupVersion version, const std::string& label,
                           Duration bound) {
    KillOutcome o;
    const Duration t0 = now_mono();
    bool killed_by_kernel = false;
    if (version == CgroupVersion::V2) {
        // The kernel kills every process of the subtree, also ones forking right now.
        int fd = ::openat(dirfd, "cgroup.kill", O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t n = ::write(fd, "1", 1);
            int err = errno;
            ::close(fd);
            if (n == 1) {
                killed_by_kernel = true;
                o.method = "cgroup.kill";
            } else {
                o.error = label + "/cgroup.kill: " + std::strerror(err);
            }
        }
    }
    if (!killed_by_kernel) o.method = "SIGKILL to cgroup.procs";  // v1, or a kernel before 5.14
    std::vector<pid_t> pids;
    const Duration deadline = t0 + bound;
    for (;;) {
        pids.clear();
        collect_pids(dirfd, pids, 4);
        if (pids.empty()) {
            o.ok = true;
            break;
        }
        if (now_mono() >= deadline) {
            o.error = std::to_string(pids.size()) + " process(es) still in " + label + " after " +
                      format_duration(bound);
            break;
        }
        ++o.rounds;
        if (!killed_by_kernel)
            for (pid_t p : pids)
                if (::kill(p, SIGKILL) == 0) ++o.signalled;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    o.elapsed = now_mono() - t0;
    if (o.ok) o.error.clear();
    return o;
}

}  // namespace oomguard
