#include "cgroup/cgroup_killer.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/oom_kill.hpp"

namespace oomguard {
namespace {

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
// "0" entries (tasks in another pid namespace) are counted in *hidden. False
// when dirfd's own cgroup.procs cannot be opened (the cgroup is gone).
bool collect_pids(int dirfd, std::vector<pid_t>& out, int depth, size_t* hidden) {
    int fd = ::openat(dirfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
    const bool own = fd >= 0;
    if (own) {
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
            if (any && v > 0)
                out.push_back(static_cast<pid_t>(v));
            else if (any && hidden)
                ++*hidden;
            ++i;
        }
    }
    if (depth <= 0) return own;
    int dfd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return own;
    DIR* d = fdopendir(dfd);
    if (!d) {
        ::close(dfd);
        return own;
    }
    while (dirent* e = readdir(d)) {
        if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
        int child = ::openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (child < 0) continue;
        collect_pids(child, out, depth - 1, hidden);
        ::close(child);
    }
    closedir(d);
    return own;
}

constexpr int kDepth = 4;

// glibc before 2.36 has no wrappers; the syscall numbers are the same everywhere.
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

int sys_pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0u)); }
int sys_pidfd_send_signal(int pidfd, int sig) {
    return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0u));
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
        bool any = false;
        for (auto& c : monitor.containers(pod)) {
            if (c.kind != CgroupKind::Container) continue;
            any = true;
            const std::string label = container_label(c.container_name, c.container_id, c.path);
            if (std::find(policy.dying.begin(), policy.dying.end(), c.path) != policy.dying.end()) {
                ++v.dying_skipped;
                skip(pod, "container " + label + ": killed earlier in this episode, still dying");
                continue;
            }
            // kubelet's line for the kernel: critical pods (and the runtime's sandbox)
            // get oom_score_adj <= -997, wherever their namespace.
            if (!c.min_oom_score_adj) {
                skip(pod, "container " + label + ": oom_score_adj of its tasks unknown (" +
                              c.tasks_note + "), cannot rule out a critical pod");
                continue;
            }
            if (*c.min_oom_score_adj <= kCriticalOomScoreAdj) {
                skip(pod, "container " + label + ": a task has oom_score_adj " +
                              std::to_string(*c.min_oom_score_adj) +
                              " (critical: kubelet protects <= -997)");
                continue;
            }
            v.found = true;
            v.pod = pod;
            v.container = std::move(c);
            return v;
        }
        if (!any) skip(pod, "no container cgroup to kill");
    }
    v.why_none = considered ? "no eligible pod among " + std::to_string(considered) : "no pods";
    if (v.dying_skipped)
        v.why_none += "; " + std::to_string(v.dying_skipped) +
                      " container(s) killed earlier in this episode are still dying";
    return v;
}

KillOutcome kill_container_cgroup(CgroupMonitor& monitor, const CgroupInfo& container) {
    KillOutcome o;
    if (!monitor.configured() || !monitor.kubernetes()) {
        o.error = Error::logic("no kubepods cgroup");
        return o;
    }
    KubePath kp = classify_cgroup_path(container.path);
    if (!path_inside(container.path, monitor.kubepods_path()) || kp.kind != KubeKind::Container) {
        o.error = Error::logic("refusing to kill " + container.path +
                               ": not a container cgroup under " + monitor.kubepods_path());
        return o;
    }
    const char* rel = container.path.c_str();
    while (*rel == '/') ++rel;
    int dirfd = ::openat(monitor.root_fd(), rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        o.error = Error::sys(errno, container.path);
        return o;
    }
    o = kill_cgroup_at(dirfd, monitor.hierarchy().version, container.path, monitor.clock());
    ::close(dirfd);
    return o;
}

long cgroup_task_count(int dirfd, size_t* hidden) {
    std::vector<pid_t> pids;
    size_t zeros = 0;
    if (!collect_pids(dirfd, pids, kDepth, &zeros)) return -1;
    if (hidden) *hidden = zeros;
    return static_cast<long>(pids.size() + zeros);
}

void signal_cgroup_tasks(int dirfd, const std::string& label, KillOutcome& o) {
    std::vector<pid_t> pids, again;
    std::vector<std::pair<pid_t, int>> fds;  // pid, pidfd
    std::vector<pid_t> done;                 // signalled by this call
    size_t hidden = 0;
    bool by_pid = false;
    std::optional<Error> error;  // the first one
    // A few rounds without sleeping: children forked while we signal show up in
    // the next listing. The kill watch re-signals later stragglers.
    for (int round = 0; round < 3; ++round) {
        pids.clear();
        hidden = 0;
        if (!collect_pids(dirfd, pids, kDepth, &hidden)) {
            if (round == 0) error = Error::sys(errno, label + "/cgroup.procs");
            break;
        }
        std::vector<pid_t> fresh;
        for (pid_t p : pids)
            if (std::find(done.begin(), done.end(), p) == done.end()) fresh.push_back(p);
        if (fresh.empty()) break;
        ++o.rounds;
        fds.clear();
        for (pid_t p : fresh) {
            int fd = by_pid ? -1 : sys_pidfd_open(p);
            if (fd < 0 && !by_pid && errno == ENOSYS) by_pid = true;
            if (fd >= 0 || by_pid) fds.emplace_back(p, fd);
        }
        if (!by_pid) {
            // The pidfd pins the process it was opened for; it is ours only if that
            // pid is still in the cgroup now (a pid reused in between would not be).
            again.clear();
            collect_pids(dirfd, again, kDepth, nullptr);
            std::sort(again.begin(), again.end());
        }
        for (auto [p, fd] : fds) {
            int r;
            if (by_pid) {
                r = ::kill(p, SIGKILL);
            } else {
                r = std::binary_search(again.begin(), again.end(), p)
                        ? sys_pidfd_send_signal(fd, SIGKILL)
                        : (errno = ESRCH, -1);
            }
            if (r == 0) {
                ++o.signalled;
            } else if (errno != ESRCH && !error) {
                error = Error::sys(errno, "SIGKILL to pid " + std::to_string(p) + " of " + label);
            }
            done.push_back(p);
            if (fd >= 0) ::close(fd);
        }
    }
    if (by_pid && o.note.empty())
        o.note =
            "pidfd_open is not supported by this kernel (ENOSYS, before 5.3): signalled by pid, "
            "a pid reused in between could be hit";
    if (o.signalled > 0)
        o.error.reset();
    else if (error)
        o.error = std::move(error);
    else if (hidden > 0)
        o.error = Error::logic(
            label + "/cgroup.procs lists " + std::to_string(hidden) +
            " task(s) only as pid 0: they are in another pid namespace (the daemon needs "
            "the host's, hostPID: true), nothing was signalled");
    else
        o.error = Error::logic("no task in " + label + " to signal");
}

KillOutcome kill_cgroup_at(int dirfd, CgroupVersion version, const std::string& label,
                           const Clock& clock) {
    KillOutcome o;
    const Duration t0 = clock.now();
    std::optional<Error> kill_error;
    if (version == CgroupVersion::V2) {
        // The kernel kills every process of the subtree, also ones forking right now.
        int fd = ::openat(dirfd, "cgroup.kill", O_WRONLY | O_CLOEXEC);
        int err = errno;
        if (fd >= 0) {
            ssize_t n = ::write(fd, "1", 1);
            err = errno;
            ::close(fd);
            if (n == 1) {
                o.error.reset();
                o.method = "cgroup.kill";
                o.elapsed = clock.now() - t0;
                return o;
            }
        }
        // ENOENT: a kernel before 5.14; anything else (EROFS, EACCES) is worth saying.
        if (err != ENOENT) kill_error = Error::sys(err, label + "/cgroup.kill");
    }
    o.method = "SIGKILL to cgroup.procs";  // v1, or no usable cgroup.kill
    signal_cgroup_tasks(dirfd, label, o);
    // Both failures are said, the cgroup.kill one first (its errno is the code).
    if (!o.ok() && kill_error)
        o.error = Error{kill_error->code, kill_error->message + "; " + o.error->message};
    o.elapsed = clock.now() - t0;
    return o;
}

}  // namespace oomguard
