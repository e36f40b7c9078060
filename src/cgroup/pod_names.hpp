// Pod and container names without the API server, from kubelet's log tree:
//   <pod_logs_dir>/<namespace>_<pod name>_<pod uid>/<container name>/<restarts>.log
//   <pod_logs_dir>/../containers/<pod name>_<namespace>_<container name>-<container id>.log
// (the second is a symlink into the first, made by kubelet for every runtime).
// Names never contain '_' (they are DNS labels), which makes both unambiguous.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/clock.hpp"
#include "util/result.hpp"
#include "util/units.hpp"

namespace oomguard {

struct PodLogDir {
    std::string namespace_, name, uid;
};
// "<ns>_<name>_<uid>" -> parts; an error saying what is malformed.
Result<PodLogDir> parse_pod_log_dir(std::string_view dirname);

struct ContainerLogLink {
    std::string pod_name, namespace_, container, container_id;
};
// "<pod>_<ns>_<container>-<id>.log" -> parts; an error saying what is malformed.
Result<ContainerLogLink> parse_container_log_name(std::string_view filename);

class PodNameResolver {
public:
    struct Pod {
        std::string namespace_, name, dir;  // dir: the log directory's name
        uint32_t seen = 0;                  // the listing that last saw it
    };

    // Deadlines and min_relist are read on `clock` (tests pass a ManualClock).
    explicit PodNameResolver(const Clock& clock = monotonic_clock()) : clock_(&clock) {}

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

    void invalidate() {
        pods_list_.listed = ids_list_.listed = false;
        pods_list_.stamp = ids_list_.stamp = Stamp{};
    }
    Duration min_relist = std::chrono::seconds(1);

    // Listings stop at this time of the clock (CLOCK_MONOTONIC) and go on at the next
    // lookup or resume(); what was read so far is found meanwhile. A node with
    // 100k stale log directories takes ~160 ms to list: never in one go on the
    // loop. Duration::max(): the caller sets none, each call then stops after
    // kDefaultSlice.
    void set_deadline(Duration d) { deadline_ = d; }
    static constexpr Duration kDefaultSlice = std::chrono::milliseconds(5);
    bool listing() const { return pods_list_.busy() || ids_list_.busy(); }
    void resume();

private:
    struct DirCloser {
        void operator()(void* d) const;
    };
    using DirPtr = std::unique_ptr<void, DirCloser>;  // a DIR*
    // A directory whose mtime did not change has the same entries: no re-list.
    struct Stamp {
        long sec = -1, nsec = -1;
        unsigned long ino = 0;
        unsigned long nlink = 0;  // 2 + subdirectories: the size to reserve
        bool operator==(const Stamp&) const = default;
    };
    // One directory's listing, updated in place: entries seen are marked with
    // the listing's generation, the rest are swept after it (no map rebuilt,
    // nothing freed but what vanished).
    struct Listing {
        bool listed = false;
        Duration at{0};
        Stamp stamp, next_stamp;
        uint32_t gen = 0;
        DirPtr dir;  // reading
        bool sweeping = false;
        bool busy() const { return dir || sweeping; }
    };

    const Clock* clock_;
    std::string dir_, containers_dir_;
    std::unordered_map<std::string, Pod> pods_;  // by uid
    struct Link {
        ContainerLogLink link;
        uint32_t seen = 0;
    };
    std::unordered_map<std::string, Link> ids_;  // by container id
    std::vector<std::string> malformed_, next_malformed_;
    Listing pods_list_, ids_list_;
    std::unordered_map<std::string, Pod>::iterator pods_sweep_;
    std::unordered_map<std::string, Link>::iterator ids_sweep_;
    Duration deadline_ = Duration::max();

    static Stamp stamp_of(const std::string& dir);
    bool past_deadline(unsigned& n, Duration limit) const;
    Duration limit() const;
    void start(Listing& l, const std::string& dir, Duration now);
    void continue_pods();
    void continue_containers();
};

}  // namespace oomguard
