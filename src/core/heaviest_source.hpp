// The narrow view of the cgroup code that the D-Bus API and the metrics need:
// a ranked list of the heaviest pods/containers. Header-only, so the cgroup
// code implements it and the adapters (bus, metrics) read it without
// depending on each other.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace oomguard {

// One pod or container cgroup. A pod-level row has an empty container.
struct HeaviestRow {
    std::string cgroup;  // path below the cgroup root, e.g. "/kubepods/burstable/pod<uid>/<cid>"
    std::string namespace_;    // Kubernetes namespace; empty outside Kubernetes
    std::string pod;           // pod name, or the pod uid when the name is unknown
    std::string container;     // container name or id; empty for a pod-level row
    std::string qos;           // "Guaranteed", "Burstable", "BestEffort" or ""
    uint64_t working_set = 0;  // bytes: usage - inactive_file, what kubelet ranks by
    uint64_t limit = 0;        // bytes; 0: no limit

    bool operator==(const HeaviestRow&) const = default;
};

class HeaviestSource {
public:
    virtual ~HeaviestSource() = default;
    // Up to `max` rows, heaviest first. Called from the loop (D-Bus GetHeaviest,
    // Dump, metrics), never on the hot path; it may serve a recent cached scan
    // and must be bounded in time.
    virtual std::vector<HeaviestRow> heaviest(size_t max) = 0;
    // The last ranking the cgroup code already holds (no scan, no file reads):
    // what the D-Bus API serves. Changes when generation() does.
    virtual std::vector<HeaviestRow> last_ranking(size_t max) { return heaviest(max); }
    // Changes whenever last_ranking() would return something new; cheap and
    // allocation-free, called from the loop about once a second.
    virtual uint64_t generation() const { return 0; }
};

}  // namespace oomguard
