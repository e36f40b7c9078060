#include "cgroup/cgroup_monitor.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
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

std::string CgroupInfo::display_name() const {
    if (!pod_name.empty()) return pod_namespace + "/" + pod_name;
    if (!pod_uid.empty()) return "pod " + pod_uid;
    return path;
}

namespace {

Duration now_mono() { return std::chrono::steady_clock::now().time_since_epoch(); }

struct DirCloser {
    void operator()(DIR* d) const { closedir(d); }
};

// Subdirectory names of an open directory. Errors (a vanished directory) give
// an empty list.
void list_subdirs(int dirfd, std::vector<std::string>& out) {
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

int open_dir_at(int dirfd, const std::string& rel) {
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

CgroupMonitor::Fd& CgroupMonitor::Fd::operator=(Fd&& o) noexcept {
    if (this != &o) {
        reset();
        fd = o.fd;
        o.fd = -1;
    }
    return *this;
}

CgroupMonitor::Fd::~Fd() { reset(); }

void CgroupMonitor::Fd::reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

CgroupMonitor::~CgroupMonitor() = default;

void CgroupMonitor::reset() {
    nodes_.clear();
    order_.clear();
    watched_.clear();
    unclassified_.clear();
    kubepods_holder_.reset();
    kubepods_fd_ = -1;
    kubepods_rel_.clear();
    driver_ = CgroupDriver::Unknown;
    root_holder_.reset();
    root_fd_ = -1;
    dirty_ = true;
    structured_ = false;
    cursor_ = 0;
    last_ = RefreshStats{};
}

Status CgroupMonitor::configure(const Settings& s) {
    if (configured() && s == settings_) return ok_status();
    reset();
    settings_ = s;
    names_.set_dir(s.pod_logs_dir);
    if (!(runtime_.roots() == s.runtime_state)) {
        runtime_.set_roots(s.runtime_state);
        namer_.clear_cache();
    }
    auto h = detect_cgroup_hierarchy(s.cgroup_root);
    if (!h) {
        error_ = h.error().message;
        return h.error();
    }
    hierarchy_ = *h;
    int fd = ::open(hierarchy_.memory_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        Error e = Error::sys(errno, "memory cgroup root " + hierarchy_.memory_root);
        error_ = e.message;
        return e;
    }
    root_holder_ = Fd(fd);
    root_fd_ = fd;
    error_.clear();
    raise_fd_limit();
    find_kubepods();
    return ok_status();
}

void CgroupMonitor::find_kubepods() {
    auto try_rel = [&](std::string rel) {
        if (rel.empty() || rel[0] != '/') rel = "/" + rel;
        while (rel.size() > 1 && rel.back() == '/') rel.pop_back();
        int fd = open_dir_at(root_fd_, rel);
        if (fd < 0) return false;
        kubepods_holder_ = Fd(fd);
        kubepods_fd_ = fd;
        kubepods_rel_ = rel;
        driver_ = rel.size() > 6 && rel.substr(rel.size() - 6) == ".slice" ? CgroupDriver::Systemd
                                                                           : CgroupDriver::Cgroupfs;
        return true;
    };
    if (!settings_.kubepods_cgroup.empty()) {
        try_rel(settings_.kubepods_cgroup);
        return;
    }
    for (const char* const* c = kKubepodsCandidates; *c; ++c)
        if (try_rel(*c)) return;
}

bool CgroupMonitor::structure_changed() {
    for (auto& w : watched_)
        if (nlink_of(w.dir.fd) != w.nlink) return true;
    return false;
}

void CgroupMonitor::restructure() {
    // Kubelet may start after us: look for kubepods again.
    if (kubepods_fd_ < 0) find_kubepods();

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

    if (kubepods_fd_ >= 0) {
        watch(kubepods_rel_, kubepods_fd_);
        list_subdirs(kubepods_fd_, names);
        for (const auto& name : names) {
            const std::string rel = kubepods_rel_ + "/" + name;
            KubeName k = classify_pod_level(name);
            if (k.kind == KubeKind::Pod) {
                // Guaranteed pods sit directly under kubepods; systemd names carry their QoS.
                QosClass q = k.driver == CgroupDriver::Systemd ? k.qos : QosClass::Guaranteed;
                entries.push_back({rel, CgroupKind::Pod, q, k.driver, k.pod_uid});
            } else if (k.kind == KubeKind::QosLevel) {
                Fd level(open_dir_at(kubepods_fd_, "/" + name));
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
        watch("", root_fd_);
        list_subdirs(root_fd_, names);
        for (const auto& name : names) {
            const std::string rel = "/" + name;
            bool slice = name.size() > 6 && name.substr(name.size() - 6) == ".slice";
            if (slice) {
                Fd s(open_dir_at(root_fd_, rel));
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

    // Merge: survivors keep their open files and their last reading.
    std::unordered_map<std::string, uint32_t> old;
    old.reserve(nodes_.size());
    for (uint32_t i = 0; i < nodes_.size(); ++i)
        if (!nodes_[i].gone) old.emplace(nodes_[i].rel, i);
    // Keep the ranking order for survivors, new ones last.
    std::vector<uint32_t> old_rank(nodes_.size(), UINT32_MAX);
    for (uint32_t r = 0; r < order_.size(); ++r) old_rank[order_[r]] = r;

    std::vector<Node> next;
    std::vector<std::pair<uint32_t, uint32_t>> rank_keys;  // (old rank, new index)
    next.reserve(entries.size());
    for (auto& e : entries) {
        auto it = old.find(e.rel);
        if (it != old.end()) {
            rank_keys.emplace_back(old_rank[it->second], static_cast<uint32_t>(next.size()));
            next.push_back(std::move(nodes_[it->second]));
            continue;
        }
        Node n;
        n.rel = std::move(e.rel);
        n.dir = Fd(open_dir_at(root_fd_, n.rel));
        if (n.dir.fd < 0) continue;  // vanished since the listing
        // Files stay closed when the fd limit is reached: reads then use openat.
        if (n.files.open(n.dir.fd, hierarchy_) == ReadStatus::Gone) continue;
        n.kind = e.kind;
        n.qos = e.qos;
        n.driver = e.driver;
        n.pod_uid = std::move(e.uid);
        rank_keys.emplace_back(UINT32_MAX, static_cast<uint32_t>(next.size()));
        next.push_back(std::move(n));
    }
    std::stable_sort(rank_keys.begin(), rank_keys.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    nodes_ = std::move(next);
    order_.clear();
    order_.reserve(nodes_.size());
    for (const auto& k : rank_keys) order_.push_back(k.second);
    watched_ = std::move(watched);
    unclassified_ = std::move(unclassified);
    cursor_ = 0;
    dirty_ = false;
    structured_ = true;
    structured_at_ = now_mono();
}

void CgroupMonitor::rank() {
    // Vanished and never-read cgroups last; then heaviest first.
    std::sort(order_.begin(), order_.end(), [this](uint32_t a, uint32_t b) {
        const Node& x = nodes_[a];
        const Node& y = nodes_[b];
        bool xv = x.has_data && !x.gone, yv = y.has_data && !y.gone;
        if (xv != yv) return xv;
        uint64_t wx = x.usage.working_set(), wy = y.usage.working_set();
        if (wx != wy) return wx > wy;
        if (x.exact != y.exact) return x.exact;  // an estimate never outranks an equal exact value
        return a < b;
    });
}

CgroupMonitor::RefreshStats CgroupMonitor::refresh(Duration budget, bool sweep) {
    RefreshStats st;
    const Duration t0 = now_mono();
    const Duration deadline = t0 + budget;
    if (!configured()) return st;
    if (!structured_ || dirty_ || t0 - structured_at_ >= settings_.structure_interval ||
        structure_changed()) {
        restructure();
        st.restructured = true;
    }
    auto vanished = [&](Node& n) {
        // Pods die all the time: skip it now, drop it at the next restructure.
        n.gone = true;
        dirty_ = true;
        ++st.vanished;
    };
    auto read_usage = [&](Node& n) {
        if (n.gone) return;
        uint64_t usage = 0;
        ReadStatus r = n.files.is_open() ? n.files.read_usage(usage)
                                         : read_usage_only_at(n.dir.fd, hierarchy_, usage);
        if (r == ReadStatus::Ok) {
            n.usage.usage = usage;
            n.has_data = true;
            ++st.read;
        } else if (r == ReadStatus::Gone) {
            vanished(n);
        } else {
            ++st.errors;
        }
    };
    auto read_inactive = [&](Node& n) {
        uint64_t inactive = 0;
        ReadStatus r = n.files.is_open() ? n.files.read_inactive_file(hierarchy_, stat_buf_,
                                                                      sizeof stat_buf_, inactive)
                                         : read_inactive_file_at(n.dir.fd, hierarchy_, inactive);
        if (r == ReadStatus::Ok) {
            n.usage.inactive_file = inactive;
            n.exact = true;
            ++st.stat_read;
        } else if (r == ReadStatus::Gone) {
            vanished(n);
        } else {
            ++st.errors;
        }
    };

    // 1. Every usage: the previously heaviest first, then the rest round-robin;
    //    at the deadline (after some progress) the rest keep their old value.
    const size_t n = order_.size();
    const size_t head = std::min(kExactTop, n);
    for (size_t i = 0; i < head; ++i) read_usage(nodes_[order_[i]]);
    const size_t rest = n - head;
    size_t done = 0;
    for (; done < rest; ++done) {
        if (done >= kExactTop && now_mono() >= deadline) {
            st.deadline_hit = true;
            break;
        }
        read_usage(nodes_[order_[head + (cursor_ + done) % rest]]);
    }
    if (rest) cursor_ = (cursor_ + done) % rest;
    st.stale = rest - done;

    // 2. Exact working sets in order of usage, until nothing further down can
    //    enter the top kExactTop (its working set <= its usage <= the bar).
    by_usage_.clear();
    for (uint32_t i = 0; i < nodes_.size(); ++i) {
        nodes_[i].exact = false;
        if (nodes_[i].has_data && !nodes_[i].gone) by_usage_.push_back(i);
    }
    std::sort(by_usage_.begin(), by_usage_.end(), [this](uint32_t a, uint32_t b) {
        return nodes_[a].usage.usage > nodes_[b].usage.usage;
    });
    uint64_t top[kExactTop];  // best working sets so far, descending
    size_t ntop = 0;
    for (uint32_t idx : by_usage_) {
        Node& x = nodes_[idx];
        // Equal usage cannot beat the bar either: an estimate sorts after an equal exact value.
        if (ntop == kExactTop && x.usage.usage <= top[kExactTop - 1]) break;
        if (st.stat_read >= kExactTop && now_mono() >= deadline) {
            st.deadline_hit = true;
            break;
        }
        read_inactive(x);
        if (!x.exact) continue;
        uint64_t ws = x.usage.working_set();
        size_t pos;
        if (ntop < kExactTop)
            pos = ntop++;
        else if (ws > top[kExactTop - 1])
            pos = kExactTop - 1;
        else
            continue;
        top[pos] = ws;
        while (pos > 0 && top[pos - 1] < top[pos]) {
            std::swap(top[pos - 1], top[pos]);
            --pos;
        }
    }

    // 3. Background: refresh the others' inactive_file round-robin while the budget lasts.
    if (sweep && !by_usage_.empty()) {
        const size_t m = by_usage_.size();
        size_t k = 0;
        for (; k < m && now_mono() < deadline; ++k) {
            Node& x = nodes_[by_usage_[(stat_cursor_ + k) % m]];
            if (!x.exact && !x.gone) read_inactive(x);
        }
        stat_cursor_ = (stat_cursor_ + k) % m;
    }
    rank();
    st.elapsed = now_mono() - t0;
    last_ = st;
    return st;
}

CgroupInfo CgroupMonitor::info_of(const Node& n) const {
    CgroupInfo c;
    c.path = n.rel;
    c.kind = n.kind;
    c.qos = n.qos;
    c.driver = n.driver;
    c.pod_uid = n.pod_uid;
    c.usage = n.usage.usage;
    c.inactive_file = n.usage.inactive_file;
    c.working_set = n.usage.working_set();
    c.estimate = !n.exact;
    return c;
}

std::vector<CgroupInfo> CgroupMonitor::ranked() const {
    std::vector<CgroupInfo> out;
    out.reserve(order_.size());
    for (uint32_t i : order_) {
        const Node& n = nodes_[i];
        if (n.gone || !n.has_data) continue;
        out.push_back(info_of(n));
    }
    return out;
}

void CgroupMonitor::add_details(CgroupInfo& c, int dirfd) {
    std::optional<uint64_t> limit;
    if (read_limit_at(dirfd, hierarchy_, limit) == ReadStatus::Ok) {
        c.limit_known = true;
        c.limit = limit;
    }
    c.oom_group = read_oom_group_at(dirfd, hierarchy_);
}

void CgroupMonitor::resolve_names(CgroupInfo& c) {
    if (c.pod_uid.empty()) return;
    if (const auto* p = names_.pod(c.pod_uid)) {
        c.pod_namespace = p->namespace_;
        c.pod_name = p->name;
    } else if (c.kind == CgroupKind::Pod && c.note.empty()) {
        c.note = "no " + names_.dir() + "/<namespace>_<name>_" + c.pod_uid + " directory";
    }
}

namespace {

// The first line of <proc>/<pid>/<file> into buf (NUL-terminated); false when unreadable.
bool read_proc_file(const std::string& proc_root, long pid, const char* file, char* buf,
                    size_t size) {
    std::string path = proc_root + "/" + std::to_string(pid) + "/" + file;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return false;
    ssize_t n = ::read(fd, buf, size - 1);
    ::close(fd);
    if (n <= 0) return false;
    buf[n] = 0;
    return true;
}

bool names_pause(std::string_view s) {
    // "pause", "/pause", "/usr/bin/pause": the basename.
    size_t slash = s.rfind('/');
    if (slash != std::string_view::npos) s = s.substr(slash + 1);
    return s == "pause";
}

// kubelet asks containerd and cri-o to run the sandbox at -998.
constexpr int kSandboxOomScoreAdj = -998;

}  // namespace

bool CgroupMonitor::read_tasks(CgroupInfo& c, int dirfd) const {
    char buf[4096];
    size_t len = 0;
    if (read_at(dirfd, "cgroup.procs", buf, sizeof buf - 1, len) != ReadStatus::Ok) {
        c.tasks_note = "cgroup.procs unreadable";
        return false;
    }
    buf[len] = 0;
    std::vector<long> pids;
    size_t hidden = 0;
    for (char* p = buf; *p;) {
        char* end = nullptr;
        long v = std::strtol(p, &end, 10);
        if (end == p) break;
        if (v > 0)
            pids.push_back(v);
        else
            ++hidden;
        p = end;
        while (*p == '\n') ++p;
    }
    c.tasks = static_cast<long>(pids.size() + hidden);
    if (pids.empty()) {
        c.tasks_note = hidden ? "its tasks are in another pid namespace (pid 0)" : "no tasks";
        return false;
    }
    bool pause = false;
    size_t readable = 0;
    for (size_t i = 0; i < pids.size() && i < 64; ++i) {
        char v[32];
        if (read_proc_file(settings_.proc_root, pids[i], "oom_score_adj", v, sizeof v)) {
            int adj = static_cast<int>(std::strtol(v, nullptr, 10));
            if (!c.min_oom_score_adj || adj < *c.min_oom_score_adj) c.min_oom_score_adj = adj;
            ++readable;
        }
        if (i == 0) {
            char comm[64];
            if (read_proc_file(settings_.proc_root, pids[i], "comm", comm, sizeof comm)) {
                std::string_view n(comm);
                if (!n.empty() && n.back() == '\n') n.remove_suffix(1);
                pause = pause || n == "pause";
            }
            char cmd[256];
            if (read_proc_file(settings_.proc_root, pids[i], "cmdline", cmd, sizeof cmd))
                pause = pause || names_pause(cmd);  // argv[0], up to its NUL
        }
    }
    if (!readable)
        c.tasks_note = "/proc/<pid>/oom_score_adj unreadable under " + settings_.proc_root;
    // Without comm or cmdline: a lone task at the sandbox's oom_score_adj.
    if (pids.size() == 1 && hidden == 0 && c.min_oom_score_adj == kSandboxOomScoreAdj) pause = true;
    return pause;
}

std::vector<CgroupInfo> CgroupMonitor::list_containers(const CgroupInfo& pod) {
    std::vector<CgroupInfo> out;
    if (!configured() || pod.kind != CgroupKind::Pod) return out;
    Fd pod_dir(open_dir_at(root_fd_, pod.path));
    if (pod_dir.fd < 0) return out;  // vanished
    std::vector<std::string> names;
    list_subdirs(pod_dir.fd, names);
    for (const auto& name : names) {
        Fd dir(open_dir_at(pod_dir.fd, "/" + name));
        if (dir.fd < 0) continue;
        MemcgUsage u;
        if (read_usage_at(dir.fd, hierarchy_, u) != ReadStatus::Ok)
            continue;  // vanished or unreadable
        CgroupInfo c;
        c.path = pod.path + "/" + name;
        c.qos = pod.qos;
        c.pod_uid = pod.pod_uid;
        c.pod_namespace = pod.pod_namespace;
        c.pod_name = pod.pod_name;
        c.usage = u.usage;
        c.inactive_file = u.inactive_file;
        c.working_set = u.working_set();
        add_details(c, dir.fd);
        KubeName k = classify_container_level(name);
        c.driver = k.driver;
        c.runtime = k.runtime;
        c.container_id = k.container_id;
        switch (k.kind) {
            case KubeKind::Container:
                c.kind = read_tasks(c, dir.fd) ? CgroupKind::Sandbox : CgroupKind::Container;
                if (c.kind == CgroupKind::Sandbox) c.note = "pod sandbox (pause)";
                break;
            case KubeKind::Conmon:
                c.kind = CgroupKind::Conmon;
                c.note = "cri-o conmon (container monitor), not a container";
                break;
            default:
                c.kind = CgroupKind::Unknown;
                c.note = k.reason;
                break;
        }
        out.push_back(std::move(c));
    }
    return out;
}

namespace {

std::vector<ContainerSlot> slots_of(const std::vector<CgroupInfo>& cs) {
    std::vector<ContainerSlot> slots;
    slots.reserve(cs.size());
    for (const auto& c : cs) {
        ContainerSlot s;
        // Only containers and sandboxes have a runtime id to name.
        if (c.kind == CgroupKind::Container || c.kind == CgroupKind::Sandbox) s.id = c.container_id;
        s.sandbox = c.kind == CgroupKind::Sandbox;
        slots.push_back(std::move(s));
    }
    return slots;
}

}  // namespace

void CgroupMonitor::name_containers(const CgroupInfo& pod, std::vector<CgroupInfo>& cs) {
    std::vector<ContainerSlot> slots = slots_of(cs);
    namer_.name(pod.pod_uid, slots);
    for (size_t i = 0; i < cs.size(); ++i) {
        CgroupInfo& c = cs[i];
        ContainerSlot& s = slots[i];
        if (s.sandbox && c.kind == CgroupKind::Container) {
            c.kind = CgroupKind::Sandbox;  // the runtime says so
            c.note = "pod sandbox (runtime state)";
        }
        if (c.pod_name.empty() && !s.pod_name.empty()) {
            c.pod_namespace = s.pod_namespace;
            c.pod_name = s.pod_name;
        }
        if (c.kind != CgroupKind::Container) continue;
        c.container_name = std::move(s.name);
        if (!s.note.empty() && (c.note.empty() || s.source != NameSource::None))
            c.note = std::move(s.note);
    }
}

std::vector<CgroupInfo> CgroupMonitor::containers(const CgroupInfo& pod) {
    std::vector<CgroupInfo> out = list_containers(pod);
    name_containers(pod, out);
    std::stable_sort(out.begin(), out.end(), [](const CgroupInfo& a, const CgroupInfo& b) {
        return a.working_set > b.working_set;
    });
    return out;
}

ContainerSlot CgroupMonitor::name_container(const CgroupInfo& pod, std::string_view id) {
    std::vector<CgroupInfo> cs = list_containers(pod);
    std::vector<ContainerSlot> slots = slots_of(cs);
    size_t at = slots.size();
    for (size_t i = 0; i < slots.size(); ++i)
        if (slots[i].id == id) at = i;
    if (at == slots.size()) {  // its cgroup is gone: still a sibling of the others
        ContainerSlot s;
        s.id = std::string(id);
        slots.push_back(std::move(s));
    }
    namer_.name(pod.pod_uid, slots);
    return std::move(slots[at]);
}

HeaviestReport CgroupMonitor::report(size_t top_n) {
    const Duration t0 = now_mono();
    HeaviestReport r;
    r.serial = ++reports_;
    r.valid = configured();
    if (!r.valid) {
        r.error = error_.empty() ? "not configured" : error_;
        return r;
    }
    r.kubernetes = kubernetes();
    r.layout = hierarchy_.layout;
    r.kubepods = kubepods_rel_;
    r.scan_time = last_.elapsed;
    r.stale = last_.stale;
    for (uint32_t i : order_) {
        const Node& n = nodes_[i];
        if (n.gone || !n.has_data) continue;
        ++r.ranked;
        if (r.top.size() >= top_n) continue;
        CgroupInfo c = info_of(n);
        add_details(c, n.dir.fd);
        resolve_names(c);
        r.top.push_back(std::move(c));
    }
    if (r.kubernetes && !r.top.empty()) {
        r.containers = containers(r.top[0]);
        // No /var/log/pods directory: the runtime's state may still name the pod.
        if (r.top[0].pod_name.empty())
            for (const auto& c : r.containers)
                if (!c.pod_name.empty()) {
                    r.top[0].pod_namespace = c.pod_namespace;
                    r.top[0].pod_name = c.pod_name;
                    r.top[0].note = "pod named from the runtime's state";
                    break;
                }
    }
    r.report_time = now_mono() - t0;
    return r;
}

CgroupMonitor::Allocatable CgroupMonitor::allocatable() {
    Allocatable a;
    if (!configured()) {
        a.error = error_;
        return a;
    }
    if (kubepods_fd_ < 0) find_kubepods();
    if (kubepods_fd_ < 0) return a;
    a.kubernetes = true;
    a.path = kubepods_rel_;
    std::optional<uint64_t> limit;
    ReadStatus st = read_limit_at(kubepods_fd_, hierarchy_, limit);
    if (st == ReadStatus::Ok) {
        a.limit_known = true;
        a.limit = limit;
    } else {
        a.error = std::string("cannot read ") + hierarchy_.limit_file() + " of " + kubepods_rel_;
    }
    return a;
}

}  // namespace oomguard
