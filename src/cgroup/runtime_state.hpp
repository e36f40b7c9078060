// Container and pod names from the container runtime's own state, for when
// kubelet's /var/log/containers symlink is missing (logs not mounted, a runtime
// without kubelet) or stale (names another pod). Both runtimes keep the OCI
// bundle of every container, and its config.json carries the CRI names as
// annotations:
//   containerd: <containerd state>/io.containerd.runtime.v2.task/k8s.io/<id>/config.json
//     io.kubernetes.cri.container-name, io.kubernetes.cri.sandbox-name,
//     io.kubernetes.cri.sandbox-namespace, io.kubernetes.cri.sandbox-uid,
//     io.kubernetes.cri.container-type ("sandbox" | "container")
//   CRI-O: <crio storage>/overlay-containers/<id>/userdata/config.json
//     io.kubernetes.container.name, io.kubernetes.pod.name,
//     io.kubernetes.pod.namespace, io.kubernetes.pod.uid,
//     io.kubernetes.cri-o.ContainerType ("sandbox" | "container")
//
// Cost: one open + read of a ~10-30 KB file and a linear scan of it per lookup
// (~20 us); lookups happen only for containers the log tree could not name.
// Files over kMaxConfigBytes are refused, not read.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/defaults.hpp"
#include "util/result.hpp"

namespace oomguard {

using Annotations = std::vector<std::pair<std::string, std::string>>;

// The top-level "annotations" object of an OCI runtime config.json (string
// values only; other value types are skipped). No "annotations": empty. Bad
// JSON: an error naming the byte offset and what was expected.
Result<Annotations> parse_oci_annotations(std::string_view json);

struct RuntimeNames {
    std::string source;                                       // "containerd" or "cri-o"
    std::string container, pod_name, pod_namespace, pod_uid;  // "" when absent
    bool sandbox = false;                                     // the pod's pause container
};

// The CRI names among a bundle's annotations (containerd's or CRI-O's keys).
RuntimeNames runtime_names_from(const Annotations& a, std::string source);

struct RuntimeStateRoots {
    std::string containerd{defaults::kContainerdState};  // containerd's `state` directory
    std::string crio{defaults::kCrioStorage};            // CRI-O's storage run root
    bool operator==(const RuntimeStateRoots&) const = default;
};

class RuntimeStateReader {
public:
    static constexpr size_t kMaxConfigBytes = 1 << 20;

    RuntimeStateReader() = default;
    explicit RuntimeStateReader(RuntimeStateRoots roots) : roots_(std::move(roots)) {}
    void set_roots(RuntimeStateRoots roots) { roots_ = std::move(roots); }
    const RuntimeStateRoots& roots() const { return roots_; }

    // The names of a container (or sandbox) by its runtime id: containerd's
    // bundle first, then CRI-O's. Errors: not a container id, no bundle in
    // either root, unreadable, too large, bad JSON.
    Result<RuntimeNames> lookup(std::string_view container_id) const;

    // The bundle config.json paths tried for an id, in order.
    std::string containerd_config(std::string_view id) const;
    std::string crio_config(std::string_view id) const;

private:
    RuntimeStateRoots roots_;
};

// A runtime container id: 12..128 lowercase hex digits (never a path).
bool is_container_id(std::string_view s);

}  // namespace oomguard
