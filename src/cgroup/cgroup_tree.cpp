#include "cgroup/cgroup_tree.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <unordered_map>

namespace oomguard {

const char* const kKubepodsCandidates[] = {
    "kubepods.slice",                        // systemd driver
    "kubepods",                              // cgroupfs driver
    "kubelet.slice/kubelet-kubepods.slice",  // kind, rootless, --cgroup-root=/kubelet (systemd)
    "kubelet/kubepods",                      // the same with cgroupfs
    nullptr,
};

const char* to_string(CgroupKind k) {
    switch (k) {
        case CgroupKind::TopLevel:
            return "cgroup";
        case CgroupKind::Pod:
            return "pod";
        case CgroupKind::Container:
            return "container";
        case CgroupKind::Sandbox:
            return "sandbox";
        case CgroupKind::Conmon:
            return "conmon";
        case CgroupKind::Unknown:
            return "unknown";
    }
    return "unknown";
}

namespace {

struct DirCloser {
    void operator()(DIR* d) const { closedir(d); }
};

// Subdirectory names of an open directory. Errors (a vanished directory) give
// an empty list.
void list_subdirs_impl(int dirfd, std::vector<std::string>& out) {
    out.clear();
    int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    std::unique_ptr<DIR, DirCloser> d(fdopendir(fd));
    if (!d) {
        ::close(fd);
        return;
    }
    while (dirent* e = readdir(d.get())) {
        if (e->d_name[0] == '.' &&
            (e->d_name[1] == 0 || (e->d_name[1] == '.' && e->d_name[2] == 0)))
            continue;
        bool dir = e->d_type == DT_DIR;
        if (e->d_type == DT_UNKNOWN) {
            struct stat st;
            dir = fstatat(dirfd, e->d_name, &st, 0) == 0 && S_ISDIR(st.st_mode);
        }
        if (dir) out.emplace_back(e->d_name);
    }
    std::sort(out.begin(), out.end());
}

int open_dir_at_impl(int dirfd, const std::string& rel) {
    // rel is "/a/b" relative to dirfd's directory.
    const char* p = rel.c_str();
    while (*p == '/') ++p;
    return ::openat(dirfd, *p ? p : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

nlink_t nlink_of(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_nlink : 0;
}

// 3 fds per ranked cgroup: make room for 1000 pods where the hard limit allows.
void raise_fd_limit() {
    rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    rlim_t want = std::min<rlim_t>(rl.rlim_max, 16384);
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

}  // namespace

void list_subdirs(int dirfd, std::vector<std::string>& out) { list_subdirs_impl(dirfd, out); }
int open_dir_at(int dirfd, const std::string& rel) { return open_dir_at_impl(dirfd, rel); }

Fd& Fd::operator=(Fd&& o) noexcept {
    if (this != &o) {
        reset();
        fd = o.fd;
        o.fd = -1;
    }
    return *this;
}

void Fd::reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

void CgroupTree::close() {
    nodes_.clear();
    watched_.clear();
    unclassified_.clear();
    kubepods_.reset();
    kubepods_rel_.clear();
    driver_ = CgroupDriver::Unknown;
    root_.reset();
}

Status CgroupTree::open(const std::string& cgroup_root, const std::string& kubepods) {
    close();
    kubepods_setting_ = kubepods;
    auto h = detect_cgroup_hierarchy(cgroup_root);
    if (!h) return h.error();
    hierarchy_ = *h;
    int fd = ::open(hierarchy_.memory_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Error::sys(errno, "memory cgroup root " + hierarchy_.memory_root);
    root_ = Fd(fd);
    raise_fd_limit();
    find_kubepods();
    return ok_status();
}

void CgroupTree::find_kubepods() {
    auto try_rel = [&](std::string rel) {
        if (rel.empty() || rel[0] != '/') rel = "/" + rel;
        while (rel.size() > 1 && rel.back() == '/') rel.pop_back();
        int fd = open_dir_at(root_.fd, rel);
        if (fd < 0) return false;
        kubepods_ = Fd(fd);
        kubepods_rel_ = rel;
        driver_ = rel.size() > 6 && rel.substr(rel.size() - 6) == ".slice" ? CgroupDriver::Systemd
                                                                           : CgroupDriver::Cgroupfs;
        return true;
    };
    if (!kubepods_setting_.empty()) {
        try_rel(kubepods_setting_);
        return;
    }
    for (const char* const* c = kKubepodsCandidates; *c; ++c)
        if (try_rel(*c)) return;
}

bool CgroupTree::changed() const {
    for (const auto& w : watched_)
        if (nlink_of(w.dir.fd) != w.nlink) return true;
    return false;
}

std::vector<uint32_t> CgroupTree::restructure() {
    // Kubelet may start after us: look for kubepods again.
    if (kubepods_.fd < 0) find_kubepods();

    struct Entry {
        std::string rel;
        CgroupKind kind;
        QosClass qos;
        CgroupDriver driver;
        std::string uid;
    };
    std::vector<Entry> entries;
    std::vector<Watched> watched;
    std::vector<Unclassified> unclassified;
    std::vector<std::string> names, inner;

    auto watch = [&](const std::string& rel, int fd) {
        Watched w;
        w.rel = rel;
        w.dir = Fd(::dup(fd));
        w.nlink = nlink_of(fd);
        watched.push_back(std::move(w));
    };

    if (kubepods_.fd >= 0) {
        watch(kubepods_rel_, kubepods_.fd);
        list_subdirs(kubepods_.fd, names);
        for (const auto& name : names) {
            const std::string rel = kubepods_rel_ + "/" + name;
            KubeName k = classify_pod_level(name);
            if (k.kind == KubeKind::Pod) {
                // Guaranteed pods sit directly under kubepods; systemd names carry their QoS.
                QosClass q = k.driver == CgroupDriver::Systemd ? k.qos : QosClass::Guaranteed;
                entries.push_back({rel, CgroupKind::Pod, q, k.driver, k.pod_uid});
            } else if (k.kind == KubeKind::QosLevel) {
                Fd level(open_dir_at(kubepods_.fd, "/" + name));
                if (level.fd < 0) continue;  // vanished
                watch(rel, level.fd);
                list_subdirs(level.fd, inner);
                for (const auto& pod : inner) {
                    KubeName p = classify_pod_level(pod);
                    if (p.kind != KubeKind::Pod) {
                        unclassified.push_back(
                            {rel + "/" + pod, p.kind == KubeKind::QosLevel
                                                  ? "a QoS level inside a QoS level"
                                                  : p.reason});
                        continue;
                    }
                    QosClass q = p.driver == CgroupDriver::Systemd ? p.qos : k.qos;
                    entries.push_back({rel + "/" + pod, CgroupKind::Pod, q, p.driver, p.pod_uid});
                }
            } else {
                unclassified.push_back({rel, k.reason});
            }
        }
    } else {
        // No Kubernetes: the top-level cgroups, and the children of top-level slices.
        watch("", root_.fd);
        list_subdirs(root_.fd, names);
        for (const auto& name : names) {
            const std::string rel = "/" + name;
            bool slice = name.size() > 6 && name.substr(name.size() - 6) == ".slice";
            if (slice) {
                Fd s(open_dir_at(root_.fd, rel));
                if (s.fd < 0) continue;
                watch(rel, s.fd);
                list_subdirs(s.fd, inner);
                for (const auto& child : inner)
                    entries.push_back({rel + "/" + child, CgroupKind::TopLevel, QosClass::Unknown,
                                       CgroupDriver::Unknown, ""});
                if (!inner.empty()) continue;
            }
            entries.push_back(
                {rel, CgroupKind::TopLevel, QosClass::Unknown, CgroupDriver::Unknown, ""});
        }
    }

    // Merge: survivors keep their open files.
    std::unordered_map<std::string, uint32_t> old;
    old.reserve(nodes_.size());
    for (uint32_t i = 0; i < nodes_.size(); ++i) old.emplace(nodes_[i].rel, i);
    std::vector<TreeNode> next;
    std::vector<uint32_t> moved_from;
    next.reserve(entries.size());
    moved_from.reserve(entries.size());
    for (auto& e : entries) {
        auto it = old.find(e.rel);
        if (it != old.end() && nodes_[it->second].dir.fd >= 0) {
            moved_from.push_back(it->second);
            next.push_back(std::move(nodes_[it->second]));
            continue;
        }
        TreeNode n;
        n.rel = std::move(e.rel);
        n.dir = Fd(open_dir_at(root_.fd, n.rel));
        if (n.dir.fd < 0) continue;  // vanished since the listing
        // Files stay closed when the fd limit is reached: reads then use openat.
        if (n.files.open(n.dir.fd, hierarchy_) == ReadStatus::Gone) continue;
        n.kind = e.kind;
        n.qos = e.qos;
        n.driver = e.driver;
        n.pod_uid = std::move(e.uid);
        moved_from.push_back(kNew);
        next.push_back(std::move(n));
    }
    nodes_ = std::move(next);
    watched_ = std::move(watched);
    unclassified_ = std::move(unclassified);
    return moved_from;
}

}  // namespace oomguard
