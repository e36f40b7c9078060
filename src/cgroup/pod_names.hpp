// Pod and container names without the API server, from kubelet's log tree:
//   <pod_logs_dir>/<namespace>_<pod name>_<pod uid>/<container name>/<restarts>.log
//   <pod_logs_dir>/../containers/<pod name>_<namespace>_<container name>-<container id>.log
// (the second is a symlink into the first, made by kubelet for every runtime).
// Names never contain '_' (they are DNS labels), which makes both unambiguous.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "util/units.hpp"

namespace oomguard {

struct PodLogDir {
    std::string namespace_, name, uid;
};
// "<ns>_<name>_<uid>" -> parts; false when malformed.
bool parse_pod_log_dir(std::string_view dirname, PodLogDir& out);

struct ContainerLogLink {
    std::string pod_name, namespace_, container, container_id;
};
// "<pod>_<ns>_<container>-<id>.log" -> parts; false when malformed.
bool parse_container_log_name(std::string_view filename, ContainerLogLink& out);

class PodNameResolver {
public:
    struct Pod {
        std::string namespace_, name, dir;  // dir: the log directory's name
    };

    // The containers/ directory defaults to a sibling of pod_logs_dir.
    void set_dir(std::string pod_logs_dir);
    const std::string& dir() const { return dir_; }

    // nullptr when unknown. A UID not seen yet re-lists the directory, at most
    // once per min_relist (pods come and go; a trigger must not list twice).
    const Pod* pod(std::string_view uid);
    // The container name for a runtime id, "" when unknown.
    std::string container(std::string_view pod_uid, std::string_view container_id);
    // The container directories of a pod's log directory.
    std::vector<std::string> container_dirs(std::string_view pod_uid);
    // Log directory entries that did not parse (for the journal).
    const std::vector<std::string>& malformed() const { return malformed_; }

    void invalidate() { pods_listed_ = containers_listed_ = false; }
    Duration min_relist = std::chrono::seconds(1);

    // Listings stop at this monotonic time (steady_clock) and resume at the next
    // lookup or resume(); entries read so far are found meanwhile. A node with
    // 100k stale log directories takes ~160 ms to list: never in one go on the
    // loop. Duration::max(): unbounded.
    void set_deadline(Duration d) { deadline_ = d; }
    bool listing() const { return pods_listing_ || containers_listing_; }
    void resume();

private:
    struct DirCloser {
        void operator()(void* d) const;
    };
    using DirPtr = std::unique_ptr<void, DirCloser>;  // a DIR*

    std::string dir_, containers_dir_;
    std::unordered_map<std::string, Pod> pods_;              // by uid
    std::unordered_map<std::string, ContainerLogLink> ids_;  // by container id
    std::vector<std::string> malformed_;
    bool pods_listed_ = false, containers_listed_ = false;
    Duration pods_at_{0}, containers_at_{0};
    Duration deadline_ = Duration::max();
    // A listing in progress and what it found so far.
    DirPtr pods_listing_, containers_listing_;
    std::unordered_map<std::string, Pod> next_pods_;
    std::unordered_map<std::string, ContainerLogLink> next_ids_;
    std::vector<std::string> next_malformed_;

    void list_pods(Duration now);
    void list_containers(Duration now);
    void continue_pods();
    void continue_containers();
    const Pod* find_pod(const std::string& uid) const;
    const ContainerLogLink* find_id(const std::string& id) const;
};

}  // namespace oomguard
