// Fuzzes the kubepods cgroup classifier (classify_cgroup_path and the two
// per-level functions). Invariants:
//  - a pod UID, when there is one, is lowercase and either the dashed UUID form
//    (8-4-4-4-12, 36 chars: the systemd driver's '_' mapped back to '-') or the
//    32-hex-digit hash of a static pod;
//  - a container id is 12..128 hex digits and a substring of the input;
//  - a pod or container has a QoS class and sits under kubepods; anything left
//    Unknown says why;
//  - the kubepods prefix found classifies as the kubepods cgroup itself;
//  - the cgroupfs and systemd spellings of the same pod/container classify the
//    same (QoS, UID, container id).
#include <cstdint>
#include <string>

#include "cgroup/kubepods_path.hpp"
#include "fuzz_check.hpp"

using namespace oomguard;

namespace {

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool well_formed_uid(const std::string& uid) {
    if (uid.size() == 32) {
        for (char c : uid)
            if (!is_lower_hex(c)) return false;
        return true;
    }
    if (uid.size() != 36) return false;
    for (size_t i = 0; i < uid.size(); ++i) {
        const bool dash_here = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash_here ? uid[i] != '-' : !is_lower_hex(uid[i])) return false;
    }
    return true;
}

bool well_formed_id(const std::string& id) {
    if (id.size() < 12 || id.size() > 128) return false;
    for (char c : id)
        if (!is_lower_hex(c) && !(c >= 'A' && c <= 'F')) return false;
    return true;
}

std::string show(const KubePath& p) {
    return std::string("in_kubepods=") + (p.in_kubepods ? "1" : "0") +
           " kubepods=" + fuzz::quote(p.kubepods) + " kind=" + to_string(p.kind) +
           " qos=" + to_string(p.qos) + " driver=" + to_string(p.driver) +
           " uid=" + fuzz::quote(p.pod_uid) + " cid=" + fuzz::quote(p.container_id) +
           " reason=" + fuzz::quote(p.reason);
}

const char* qos_word(QosClass q) {
    return q == QosClass::Burstable ? "burstable" : q == QosClass::BestEffort ? "besteffort" : "";
}

// The same pod/container in the other driver's spelling.
std::string respell(const KubePath& p) {
    const bool guaranteed = p.qos == QosClass::Guaranteed;
    std::string uid_ = p.pod_uid;
    for (char& c : uid_)
        if (c == '-') c = '_';
    std::string out;
    if (p.driver == CgroupDriver::Cgroupfs) {
        out = "/kubepods.slice";
        std::string stem = guaranteed ? "kubepods" : std::string("kubepods-") + qos_word(p.qos);
        if (!guaranteed) out += "/" + stem + ".slice";
        out += "/" + stem + "-pod" + uid_ + ".slice";
        if (p.kind == KubeKind::Container) out += "/cri-containerd-" + p.container_id + ".scope";
    } else {
        out = "/kubepods";
        if (!guaranteed) out += std::string("/") + qos_word(p.qos);
        out += "/pod" + p.pod_uid;
        if (p.kind == KubeKind::Container) out += "/" + p.container_id;
    }
    return out;
}

void check_name(const KubeName& n, std::string_view input, const std::string& what) {
    if (n.kind == KubeKind::Unknown) {
        FUZZ_CHECK(!n.reason.empty(), what + ": Unknown without a reason");
        return;
    }
    if (n.kind == KubeKind::Pod) FUZZ_CHECK(well_formed_uid(n.pod_uid), what + " uid " + n.pod_uid);
    if (n.kind == KubeKind::Container || n.kind == KubeKind::Conmon) {
        FUZZ_CHECK(well_formed_id(n.container_id), what + " cid " + fuzz::quote(n.container_id));
        FUZZ_CHECK(input.find(n.container_id) != std::string_view::npos, what);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text = fuzz::as_text(data, size);

    check_name(classify_pod_level(text), text, "pod level " + fuzz::quote(text));
    check_name(classify_container_level(text), text, "container level " + fuzz::quote(text));
    const Result<std::string> uid = normalize_pod_uid(text);
    FUZZ_CHECK(uid ? well_formed_uid(*uid) : !uid.error().message.empty(),
               fuzz::quote(text) + " -> " + (uid ? fuzz::quote(*uid) : uid.error().message));

    const KubePath p = classify_cgroup_path(text);
    const std::string what = fuzz::quote(text) + "\n  got " + show(p);
    if (!p.in_kubepods) {
        FUZZ_CHECK(p.kind == KubeKind::Unknown && !p.reason.empty(), what);
        return 0;
    }
    FUZZ_CHECK(!p.kubepods.empty() && p.kubepods[0] == '/', what);
    const KubePath root = classify_cgroup_path(p.kubepods);
    FUZZ_CHECK(root.in_kubepods && root.kind == KubeKind::Unknown && root.kubepods == p.kubepods,
               what + "\n  its kubepods prefix gives " + show(root));

    if (p.kind == KubeKind::Unknown) {
        FUZZ_CHECK(!p.reason.empty(), what);
        return 0;
    }
    FUZZ_CHECK(p.qos != QosClass::Unknown && p.driver != CgroupDriver::Unknown, what);
    if (p.kind == KubeKind::QosLevel) {
        FUZZ_CHECK(p.qos != QosClass::Guaranteed && p.pod_uid.empty(), what);
        return 0;
    }
    FUZZ_CHECK(well_formed_uid(p.pod_uid), what);
    if (p.kind == KubeKind::Container || p.kind == KubeKind::Conmon) {
        FUZZ_CHECK(well_formed_id(p.container_id), what);
        FUZZ_CHECK(text.find(p.container_id) != std::string_view::npos, what);
    } else {
        FUZZ_CHECK(p.container_id.empty(), what);
    }
    if (p.kind == KubeKind::Conmon) return 0;  // cri-o only; no cgroupfs spelling

    const std::string other = respell(p);
    const KubePath q = classify_cgroup_path(other);
    FUZZ_CHECK(q.kind == p.kind && q.qos == p.qos && q.pod_uid == p.pod_uid &&
                   q.container_id == p.container_id && q.driver != p.driver,
               what + "\n  respelled " + fuzz::quote(other) + " gives " + show(q));
    return 0;
}
