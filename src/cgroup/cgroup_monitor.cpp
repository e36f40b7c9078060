#include "cgroup/cgroup_monitor.hpp"

#include <algorithm>
#include <unordered_map>

#include "cgroup/proc_tasks.hpp"

namespace oomguard {

std::string CgroupInfo::display_name() const {
    if (!pod_name.empty()) return pod_namespace + "/" + pod_name;
    if (!pod_uid.empty()) return "pod " + pod_uid;
    return path;
}

CgroupMonitor::~CgroupMonitor() = default;

void CgroupMonitor::reset() {
    tree_.close();
    rank_.clear();
    order_.clear();
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
    Status st = tree_.open(s.cgroup_root, s.kubepods_cgroup);
    if (!st) {
        error_ = st.error();
        return st;
    }
    error_.reset();
    return ok_status();
}

void CgroupMonitor::restructure() {
    // A vanished cgroup is re-opened if it is listed again.
    auto& nodes = tree_.nodes();
    for (uint32_t i = 0; i < nodes.size(); ++i)
        if (rank_[i].gone) nodes[i].dir.reset();
    std::vector<uint32_t> old_rank(rank_.size(), CgroupTree::kNew);
    for (uint32_t r = 0; r < order_.size(); ++r) old_rank[order_[r]] = r;
    const std::vector<uint32_t> from = tree_.restructure();
    // Survivors keep their last reading and their place in the ranking, new ones last.
    std::vector<RankNode> rank(from.size());
    std::vector<std::pair<uint32_t, uint32_t>> keys;  // (old rank, new index)
    keys.reserve(from.size());
    for (uint32_t i = 0; i < from.size(); ++i) {
        if (from[i] != CgroupTree::kNew) rank[i] = rank_[from[i]];
        keys.emplace_back(from[i] == CgroupTree::kNew ? CgroupTree::kNew : old_rank[from[i]], i);
    }
    std::stable_sort(keys.begin(), keys.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    rank_ = std::move(rank);
    order_.clear();
    order_.reserve(keys.size());
    for (const auto& k : keys) order_.push_back(k.second);
    cursor_ = 0;
    dirty_ = false;
    structured_ = true;
    structured_at_ = clock_->now();
}

CgroupMonitor::RefreshStats CgroupMonitor::refresh(Duration budget, bool sweep) {
    RefreshStats st;
    const Duration t0 = clock_->now();
    const Duration deadline = t0 + budget;
    if (!configured()) return st;
    if (!structured_ || dirty_ || t0 - structured_at_ >= settings_.structure_interval ||
        tree_.changed()) {
        restructure();
        st.restructured = true;
    }
    auto& nodes = tree_.nodes();
    const CgroupHierarchy& h = tree_.hierarchy();
    auto vanished = [&](RankNode& r) {
        // Pods die all the time: skip it now, drop it at the next restructure.
        r.gone = true;
        dirty_ = true;
        ++st.vanished;
    };
    auto read_usage = [&](uint32_t i) {
        RankNode& r = rank_[i];
        if (r.gone) return;
        TreeNode& n = nodes[i];
        uint64_t usage = 0;
        ReadStatus rs =
            n.files.is_open() ? n.files.read_usage(usage) : read_usage_only_at(n.dir.fd, h, usage);
        if (rs == ReadStatus::Ok) {
            r.usage.usage = usage;
            r.has_data = true;
            ++st.read;
        } else if (rs == ReadStatus::Gone) {
            vanished(r);
        } else {
            ++st.errors;
        }
    };
    auto read_inactive = [&](uint32_t i) {
        RankNode& r = rank_[i];
        TreeNode& n = nodes[i];
        uint64_t inactive = 0;
        ReadStatus rs = n.files.is_open()
                            ? n.files.read_inactive_file(h, stat_buf_, sizeof stat_buf_, inactive)
                            : read_inactive_file_at(n.dir.fd, h, inactive);
        if (rs == ReadStatus::Ok) {
            r.usage.inactive_file = inactive;
            r.exact = true;
        } else if (rs == ReadStatus::Gone) {
            vanished(r);
        } else {
            ++st.errors;
        }
    };

    // 1. Every usage: the previously heaviest first, then the rest round-robin;
    //    at the deadline (after some progress) the rest keep their old value.
    auto read_usages = [&] {
        const size_t n = order_.size();
        const size_t head = std::min(kExactTop, n);
        for (size_t i = 0; i < head; ++i) read_usage(order_[i]);
        const size_t rest = n - head;
        size_t done = 0;
        for (; done < rest; ++done) {
            if (done >= kExactTop && clock_->now() >= deadline) {
                st.deadline_hit = true;
                break;
            }
            read_usage(order_[head + (cursor_ + done) % rest]);
        }
        if (rest) cursor_ = (cursor_ + done) % rest;
        st.stale = rest - done;
    };
    read_usages();
    // A pod gone: one may have come in its place under the same link count (a
    // rollout, a Job). Re-list now rather than at the next refresh (10 s when
    // calm), so that a trigger meanwhile ranks the newcomer too.
    if (st.vanished && !st.restructured && clock_->now() < deadline) {
        restructure();
        st.restructured = true;
        read_usages();
    }

    // 2. Exact working sets where they can matter.
    RankTopStats top = rank_top(rank_, kExactTop, deadline, *clock_, read_inactive, by_usage_);
    st.stat_read = top.stat_read;
    st.deadline_hit = st.deadline_hit || top.deadline_hit;

    // 3. Background: refresh the others' inactive_file round-robin while the budget lasts.
    if (sweep && !by_usage_.empty()) {
        const size_t m = by_usage_.size();
        size_t k = 0;
        for (; k < m && clock_->now() < deadline; ++k) {
            RankNode& x = rank_[by_usage_[(stat_cursor_ + k) % m]];
            if (x.exact || x.gone) continue;
            read_inactive(by_usage_[(stat_cursor_ + k) % m]);
            if (x.exact) ++st.stat_read;
        }
        stat_cursor_ = (stat_cursor_ + k) % m;
    }
    rank_order(rank_, order_);
    st.elapsed = clock_->now() - t0;
    last_ = st;
    return st;
}

CgroupInfo CgroupMonitor::info_of(uint32_t i) const {
    const TreeNode& n = tree_.nodes()[i];
    const RankNode& r = rank_[i];
    CgroupInfo c;
    c.path = n.rel;
    c.kind = n.kind;
    c.qos = n.qos;
    c.driver = n.driver;
    c.pod_uid = n.pod_uid;
    c.usage = r.usage.usage;
    c.inactive_file = r.usage.inactive_file;
    c.working_set = r.working_set();
    c.estimate = !r.exact;
    return c;
}

std::vector<CgroupInfo> CgroupMonitor::ranked() const {
    std::vector<CgroupInfo> out;
    out.reserve(order_.size());
    for (uint32_t i : order_)
        if (rank_[i].valid()) out.push_back(info_of(i));
    return out;
}

void CgroupMonitor::add_details(CgroupInfo& c, int dirfd) {
    std::optional<uint64_t> limit;
    if (read_limit_at(dirfd, tree_.hierarchy(), limit) == ReadStatus::Ok) {
        c.limit_known = true;
        c.limit = limit;
    }
    c.oom_group = read_oom_group_at(dirfd, tree_.hierarchy());
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

std::vector<CgroupInfo> CgroupMonitor::list_containers(const CgroupInfo& pod) {
    std::vector<CgroupInfo> out;
    if (!configured() || pod.kind != CgroupKind::Pod) return out;
    Fd pod_dir(open_dir_at(tree_.root_fd(), pod.path));
    if (pod_dir.fd < 0) return out;  // vanished
    std::vector<std::string> names;
    list_subdirs(pod_dir.fd, names);
    for (const auto& name : names) {
        Fd dir(open_dir_at(pod_dir.fd, "/" + name));
        if (dir.fd < 0) continue;
        MemcgUsage u;
        if (read_usage_at(dir.fd, tree_.hierarchy(), u) != ReadStatus::Ok)
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
            case KubeKind::Container: {
                TaskScan t = scan_cgroup_tasks(dir.fd, settings_.proc_root);
                c.tasks = t.tasks;
                c.min_oom_score_adj = t.min_oom_score_adj;
                c.tasks_note = std::move(t.note);
                c.kind = t.sandbox ? CgroupKind::Sandbox : CgroupKind::Container;
                if (c.kind == CgroupKind::Sandbox) c.note = "pod sandbox (pause)";
                break;
            }
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
    const Duration t0 = clock_->now();
    HeaviestReport r;
    r.serial = ++reports_;
    r.valid = configured();
    if (!r.valid) {
        r.error = error_ ? *error_ : Error::logic("not configured");
        return r;
    }
    r.kubernetes = kubernetes();
    r.layout = tree_.hierarchy().layout;
    r.kubepods = tree_.kubepods_path();
    r.scan_time = last_.elapsed;
    r.stale = last_.stale;
    for (uint32_t i : order_) {
        if (!rank_[i].valid()) continue;
        ++r.ranked;
        if (r.top.size() >= top_n) continue;
        CgroupInfo c = info_of(i);
        add_details(c, tree_.nodes()[i].dir.fd);
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
    r.report_time = clock_->now() - t0;
    return r;
}

CgroupMonitor::Allocatable CgroupMonitor::allocatable() {
    Allocatable a;
    if (!configured()) {
        a.error = error_;
        return a;
    }
    if (!tree_.kubernetes()) {
        tree_.find_kubepods();
        // Found here, not by a re-listing: the nodes are still the top-level
        // cgroups. The next refresh re-lists (was: up to the 60 s safety net).
        if (tree_.kubernetes()) dirty_ = true;
    }
    if (!tree_.kubernetes()) return a;
    a.kubernetes = true;
    a.path = tree_.kubepods_path();
    std::optional<uint64_t> limit;
    ReadStatus st = read_limit_at(tree_.kubepods_fd(), tree_.hierarchy(), limit);
    if (st == ReadStatus::Ok) {
        a.limit_known = true;
        a.limit = limit;
    } else {
        a.error = Error::logic(std::string("cannot read ") + tree_.hierarchy().limit_file() +
                               " of " + tree_.kubepods_path());
    }
    return a;
}

}  // namespace oomguard
