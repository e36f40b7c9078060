#include "cgroup/pod_names.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <cstdio>
#include <memory>

#include "cgroup/runtime_state.hpp"

namespace oomguard {
namespace {

// Splits on '_'; false unless exactly `n` non-empty parts.
bool split3(std::string_view s, std::string_view out[3]) {
    size_t a = s.find('_');
    if (a == std::string_view::npos) return false;
    size_t b = s.find('_', a + 1);
    if (b == std::string_view::npos || s.find('_', b + 1) != std::string_view::npos) return false;
    out[0] = s.substr(0, a);
    out[1] = s.substr(a + 1, b - a - 1);
    out[2] = s.substr(b + 1);
    return !out[0].empty() && !out[1].empty() && !out[2].empty();
}

struct DirCloser {
    void operator()(DIR* d) const { closedir(d); }
};

std::string parent_dir(const std::string& path) {
    size_t end = path.find_last_not_of('/');
    if (end == std::string::npos) return "/";
    size_t slash = path.rfind('/', end);
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

Result<PodLogDir> parse_pod_log_dir(std::string_view dirname) {
    std::string_view p[3];
    if (!split3(dirname, p))
        return Error::logic("'" + std::string(dirname) +
                            "': not <namespace>_<name>_<uid> (three non-empty parts)");
    return PodLogDir{std::string(p[0]), std::string(p[1]), std::string(p[2])};
}

Result<ContainerLogLink> parse_container_log_name(std::string_view filename) {
    auto bad = [&](const char* why) {
        return Error::logic("'" + std::string(filename) +
                            "': not <pod>_<namespace>_<container>-<id>.log (" + why + ")");
    };
    if (filename.size() < 4 || filename.substr(filename.size() - 4) != ".log")
        return bad("no .log suffix");
    std::string_view stem = filename.substr(0, filename.size() - 4);
    size_t dash = stem.rfind('-');
    if (dash == std::string_view::npos || !is_container_id(stem.substr(dash + 1)))
        return bad("no -<12..128 hex digits> id");
    std::string_view p[3];
    if (!split3(stem.substr(0, dash), p)) return bad("not three non-empty parts before the id");
    return ContainerLogLink{std::string(p[0]), std::string(p[1]), std::string(p[2]),
                            std::string(stem.substr(dash + 1))};
}

void PodNameResolver::set_dir(std::string pod_logs_dir) {
    if (pod_logs_dir == dir_) return;
    dir_ = std::move(pod_logs_dir);
    containers_dir_ = parent_dir(dir_) + "/containers";
    pods_.clear();
    ids_.clear();
    malformed_.clear();
    pods_list_ = Listing{};
    ids_list_ = Listing{};
    invalidate();
}

void PodNameResolver::DirCloser::operator()(void* d) const { closedir(static_cast<DIR*>(d)); }

namespace {
// Deadline checks cost a clock read: one per this many entries.
constexpr unsigned kEntriesPerCheck = 16;
}  // namespace

PodNameResolver::Stamp PodNameResolver::stamp_of(const std::string& dir) {
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) return {};
    return {static_cast<long>(st.st_mtim.tv_sec), static_cast<long>(st.st_mtim.tv_nsec),
            static_cast<unsigned long>(st.st_ino), static_cast<unsigned long>(st.st_nlink)};
}

bool PodNameResolver::past_deadline(unsigned& n, Duration limit) const {
    return ++n % kEntriesPerCheck == 0 && clock_->now() >= limit;
}

Duration PodNameResolver::limit() const {
    // Without a deadline of the caller's, still never more than one slice: no
    // caller (metrics, D-Bus, the kmsg reporter) can hold the loop for a listing.
    return deadline_ != Duration::max() ? deadline_ : clock_->now() + kDefaultSlice;
}

void PodNameResolver::start(Listing& l, const std::string& dir, Duration now) {
    l.listed = true;
    l.at = now;
    const Stamp st = stamp_of(dir);
    if (st.sec >= 0 && st == l.stamp) return;  // unchanged since the last listing
    DIR* d = opendir(dir.c_str());
    if (!d) return;  // no kubelet logs here: names stay unknown
    l.dir.reset(d);
    l.next_stamp = st;
    ++l.gen;
}

void PodNameResolver::continue_pods() {
    Listing& l = pods_list_;
    unsigned n = 0;
    const Duration lim = limit();
    if (l.dir) {
        DIR* d = static_cast<DIR*>(l.dir.get());
        while (dirent* e = readdir(d)) {
            std::string_view name(e->d_name);
            if (name == "." || name == "..") continue;
            auto parsed = parse_pod_log_dir(name);
            if (!parsed) {
                if (next_malformed_.size() < 16) next_malformed_.emplace_back(name);
            } else {
                PodLogDir& p = *parsed;
                auto [it, added] = pods_.try_emplace(std::move(p.uid));
                Pod& pod = it->second;
                if (added || pod.dir != name)
                    pod = Pod{std::move(p.namespace_), std::move(p.name), std::string(name), 0};
                pod.seen = l.gen;
            }
            if (past_deadline(n, lim)) return;  // found entries are visible meanwhile
        }
        l.dir.reset();
        l.stamp = l.next_stamp;
        malformed_.swap(next_malformed_);
        next_malformed_.clear();
        l.sweeping = true;
        pods_sweep_ = pods_.begin();
    }
    if (!l.sweeping) return;
    // What this listing did not see is gone.
    while (pods_sweep_ != pods_.end()) {
        if (pods_sweep_->second.seen != l.gen)
            pods_sweep_ = pods_.erase(pods_sweep_);
        else
            ++pods_sweep_;
        if (past_deadline(n, lim)) return;
    }
    l.sweeping = false;
}

void PodNameResolver::continue_containers() {
    Listing& l = ids_list_;
    unsigned n = 0;
    const Duration lim = limit();
    if (l.dir) {
        DIR* d = static_cast<DIR*>(l.dir.get());
        while (dirent* e = readdir(d)) {
            if (auto link = parse_container_log_name(e->d_name)) {
                auto [it, added] = ids_.try_emplace(link->container_id);
                if (added) it->second.link = std::move(*link);
                it->second.seen = l.gen;
            }
            if (past_deadline(n, lim)) return;
        }
        l.dir.reset();
        l.stamp = l.next_stamp;
        l.sweeping = true;
        ids_sweep_ = ids_.begin();
    }
    if (!l.sweeping) return;
    while (ids_sweep_ != ids_.end()) {
        if (ids_sweep_->second.seen != l.gen)
            ids_sweep_ = ids_.erase(ids_sweep_);
        else
            ++ids_sweep_;
        if (past_deadline(n, lim)) return;
    }
    l.sweeping = false;
}

void PodNameResolver::resume() {
    continue_pods();
    continue_containers();
}

const PodNameResolver::Pod* PodNameResolver::pod(std::string_view uid) {
    if (dir_.empty() || uid.empty()) return nullptr;
    std::string key(uid);
    auto it = pods_.find(key);
    if (it != pods_.end()) return &it->second;
    if (pods_list_.busy()) {
        continue_pods();
    } else {
        Duration now = clock_->now();
        if (pods_list_.listed && now - pods_list_.at < min_relist) return nullptr;
        next_malformed_.clear();
        start(pods_list_, dir_, now);
        // One rehash now instead of several mid-listing (100k entries: ~30 ms each).
        if (pods_list_.dir) pods_.reserve(pods_list_.next_stamp.nlink + 16);
        continue_pods();
    }
    it = pods_.find(key);
    return it == pods_.end() ? nullptr : &it->second;
}

std::string PodNameResolver::container(std::string_view pod_uid, std::string_view container_id) {
    if (dir_.empty() || container_id.empty()) return "";
    std::string key(container_id);
    auto it = ids_.find(key);
    if (it == ids_.end()) {
        if (ids_list_.busy()) {
            continue_containers();
        } else {
            Duration now = clock_->now();
            if (ids_list_.listed && now - ids_list_.at < min_relist) return "";
            start(ids_list_, containers_dir_, now);
            continue_containers();
        }
        it = ids_.find(key);
        if (it == ids_.end()) return "";
    }
    const ContainerLogLink& l = it->second.link;
    // The link names the pod by name and namespace: check it is this pod.
    if (const Pod* p = pod(pod_uid); p && (p->name != l.pod_name || p->namespace_ != l.namespace_))
        return "";
    return l.container;
}

std::vector<std::string> PodNameResolver::container_dirs(std::string_view pod_uid) {
    std::vector<std::string> out;
    const Pod* p = pod(pod_uid);
    if (!p) return out;
    std::unique_ptr<DIR, DirCloser> d(opendir((dir_ + "/" + p->dir).c_str()));
    if (!d) return out;
    while (dirent* e = readdir(d.get())) {
        std::string_view name(e->d_name);
        if (name == "." || name == ".." || e->d_type == DT_REG || e->d_type == DT_LNK) continue;
        out.emplace_back(name);
    }
    return out;
}

}  // namespace oomguard
