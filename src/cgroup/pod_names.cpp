#include "cgroup/pod_names.hpp"

#include <dirent.h>

#include <memory>

namespace oomguard {
namespace {

Duration now_mono() { return std::chrono::steady_clock::now().time_since_epoch(); }

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

bool is_hex_id(std::string_view s) {
    if (s.size() < 12 || s.size() > 128) return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
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

bool parse_pod_log_dir(std::string_view dirname, PodLogDir& out) {
    std::string_view p[3];
    if (!split3(dirname, p)) return false;
    out.namespace_ = std::string(p[0]);
    out.name = std::string(p[1]);
    out.uid = std::string(p[2]);
    return true;
}

bool parse_container_log_name(std::string_view filename, ContainerLogLink& out) {
    if (filename.size() < 4 || filename.substr(filename.size() - 4) != ".log") return false;
    std::string_view stem = filename.substr(0, filename.size() - 4);
    size_t dash = stem.rfind('-');
    if (dash == std::string_view::npos || !is_hex_id(stem.substr(dash + 1))) return false;
    std::string_view p[3];
    if (!split3(stem.substr(0, dash), p)) return false;
    out.pod_name = std::string(p[0]);
    out.namespace_ = std::string(p[1]);
    out.container = std::string(p[2]);
    out.container_id = std::string(stem.substr(dash + 1));
    return true;
}

void PodNameResolver::set_dir(std::string pod_logs_dir) {
    if (pod_logs_dir == dir_) return;
    dir_ = std::move(pod_logs_dir);
    containers_dir_ = parent_dir(dir_) + "/containers";
    pods_.clear();
    ids_.clear();
    malformed_.clear();
    pods_listing_.reset();
    containers_listing_.reset();
    next_pods_.clear();
    next_ids_.clear();
    invalidate();
}

void PodNameResolver::DirCloser::operator()(void* d) const { closedir(static_cast<DIR*>(d)); }

namespace {
// Deadline checks cost a clock read: one per this many entries.
constexpr unsigned kEntriesPerCheck = 64;
}  // namespace

void PodNameResolver::list_pods(Duration now) {
    pods_listed_ = true;
    pods_at_ = now;
    DIR* d = opendir(dir_.c_str());
    if (!d) return;  // no kubelet logs here: names stay unknown
    pods_listing_.reset(d);
    next_pods_.clear();
    next_malformed_.clear();
    continue_pods();
}

void PodNameResolver::continue_pods() {
    if (!pods_listing_) return;
    DIR* d = static_cast<DIR*>(pods_listing_.get());
    unsigned n = 0;
    while (dirent* e = readdir(d)) {
        std::string_view name(e->d_name);
        if (name == "." || name == "..") continue;
        PodLogDir p;
        if (!parse_pod_log_dir(name, p)) {
            if (next_malformed_.size() < 16) next_malformed_.emplace_back(name);
        } else {
            next_pods_[p.uid] = Pod{std::move(p.namespace_), std::move(p.name), std::string(name)};
        }
        if (++n % kEntriesPerCheck == 0 && deadline_ != Duration::max() && now_mono() >= deadline_)
            return;  // resumed later; found entries are visible meanwhile
    }
    pods_listing_.reset();
    pods_.swap(next_pods_);
    malformed_.swap(next_malformed_);
    next_pods_.clear();
    next_malformed_.clear();
}

void PodNameResolver::list_containers(Duration now) {
    containers_listed_ = true;
    containers_at_ = now;
    DIR* d = opendir(containers_dir_.c_str());
    if (!d) return;
    containers_listing_.reset(d);
    next_ids_.clear();
    continue_containers();
}

void PodNameResolver::continue_containers() {
    if (!containers_listing_) return;
    DIR* d = static_cast<DIR*>(containers_listing_.get());
    unsigned n = 0;
    while (dirent* e = readdir(d)) {
        ContainerLogLink l;
        if (parse_container_log_name(e->d_name, l)) next_ids_[l.container_id] = std::move(l);
        if (++n % kEntriesPerCheck == 0 && deadline_ != Duration::max() && now_mono() >= deadline_)
            return;
    }
    containers_listing_.reset();
    ids_.swap(next_ids_);
    next_ids_.clear();
}

void PodNameResolver::resume() {
    continue_pods();
    continue_containers();
}

const PodNameResolver::Pod* PodNameResolver::find_pod(const std::string& uid) const {
    auto it = pods_.find(uid);
    if (it != pods_.end()) return &it->second;
    if (pods_listing_) {
        auto jt = next_pods_.find(uid);
        if (jt != next_pods_.end()) return &jt->second;
    }
    return nullptr;
}

const ContainerLogLink* PodNameResolver::find_id(const std::string& id) const {
    auto it = ids_.find(id);
    if (it != ids_.end()) return &it->second;
    if (containers_listing_) {
        auto jt = next_ids_.find(id);
        if (jt != next_ids_.end()) return &jt->second;
    }
    return nullptr;
}

const PodNameResolver::Pod* PodNameResolver::pod(std::string_view uid) {
    if (dir_.empty() || uid.empty()) return nullptr;
    std::string key(uid);
    if (const Pod* p = find_pod(key)) return p;
    if (pods_listing_) {
        continue_pods();
    } else {
        Duration now = now_mono();
        if (pods_listed_ && now - pods_at_ < min_relist) return nullptr;
        list_pods(now);
    }
    return find_pod(key);
}

std::string PodNameResolver::container(std::string_view pod_uid, std::string_view container_id) {
    if (dir_.empty() || container_id.empty()) return "";
    std::string key(container_id);
    const ContainerLogLink* l = find_id(key);
    if (!l) {
        if (containers_listing_) {
            continue_containers();
        } else {
            Duration now = now_mono();
            if (containers_listed_ && now - containers_at_ < min_relist) return "";
            list_containers(now);
        }
        l = find_id(key);
        if (!l) return "";
    }
    // The link names the pod by name and namespace: check it is this pod.
    if (const Pod* p = pod(pod_uid); p && (p->name != l->pod_name || p->namespace_ != l->namespace_))
        return "";
    return l->container;
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
