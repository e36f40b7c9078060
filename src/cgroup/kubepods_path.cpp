#include "cgroup/kubepods_path.hpp"

#include <vector>

namespace oomguard {

const char* to_string(QosClass q) {
    switch (q) {
        case QosClass::Guaranteed:
            return "Guaranteed";
        case QosClass::Burstable:
            return "Burstable";
        case QosClass::BestEffort:
            return "BestEffort";
        case QosClass::Unknown:
            return "Unknown";
    }
    return "Unknown";
}

const char* to_string(CgroupDriver d) {
    switch (d) {
        case CgroupDriver::Cgroupfs:
            return "cgroupfs";
        case CgroupDriver::Systemd:
            return "systemd";
        case CgroupDriver::Unknown:
            return "unknown";
    }
    return "unknown";
}

const char* to_string(ContainerRuntime r) {
    switch (r) {
        case ContainerRuntime::Containerd:
            return "containerd";
        case ContainerRuntime::Crio:
            return "cri-o";
        case ContainerRuntime::Docker:
            return "docker";
        case ContainerRuntime::Unknown:
            return "";
    }
    return "";
}

const char* to_string(KubeKind k) {
    switch (k) {
        case KubeKind::QosLevel:
            return "qos-level";
        case KubeKind::Pod:
            return "pod";
        case KubeKind::Container:
            return "container";
        case KubeKind::Conmon:
            return "conmon";
        case KubeKind::Unknown:
            return "unknown";
    }
    return "unknown";
}

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

bool is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// "kubepods" alone or after a '-' (prefixed slices such as kubelet-kubepods).
bool ends_with_kubepods_word(std::string_view s, std::string_view word) {
    if (!ends_with(s, word)) return false;
    return s.size() == word.size() || s[s.size() - word.size() - 1] == '-';
}

// Names are shown in reasons; keep them printable and short.
std::string quoted(std::string_view s) {
    std::string out = "\"";
    for (char c : s.substr(0, 80)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
    if (s.size() > 80) out += "...";
    return out + "\"";
}

KubeName unknown(std::string reason) {
    KubeName k;
    k.reason = std::move(reason);
    return k;
}

bool valid_container_id(std::string_view id) {
    if (id.size() < 12 || id.size() > 128) return false;
    for (char c : id)
        if (!is_hex(c)) return false;
    return true;
}

}  // namespace

bool is_kubepods_name(std::string_view name) {
    if (name == "kubepods") return true;
    if (!ends_with(name, ".slice")) return false;
    return ends_with_kubepods_word(name.substr(0, name.size() - 6), "kubepods");
}

Result<std::string> normalize_pod_uid(std::string_view raw) {
    auto fail = [](std::string why) { return Error::logic(std::move(why)); };
    if (raw.empty()) return fail("empty pod UID");
    std::string uid;
    uid.reserve(raw.size());
    for (char c : raw) {
        if (c == '_' || c == '-')
            uid += '-';
        else if (is_hex(c))
            uid += static_cast<char>(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
        else
            return fail("pod UID " + quoted(raw) + " contains " + quoted(std::string_view(&c, 1)));
    }
    // A UUID (8-4-4-4-12) from the API server, or a 32-hex-digit hash (static pods).
    static constexpr int kGroups[] = {8, 4, 4, 4, 12};
    if (uid.size() == 36) {
        size_t pos = 0;
        for (int g = 0; g < 5; ++g) {
            for (int i = 0; i < kGroups[g]; ++i, ++pos)
                if (uid[pos] == '-') return fail("pod UID " + quoted(raw) + " is not a UUID");
            if (g < 4 && uid[pos++] != '-')
                return fail("pod UID " + quoted(raw) + " is not a UUID");
        }
        return uid;
    }
    if (uid.size() == 32 && uid.find('-') == std::string::npos) return uid;
    return fail("pod UID " + quoted(raw) + " is neither a UUID nor a 32-digit hash");
}

KubeName classify_pod_level(std::string_view name) {
    KubeName k;
    if (name == "burstable" || name == "besteffort") {
        k.kind = KubeKind::QosLevel;
        k.qos = name == "burstable" ? QosClass::Burstable : QosClass::BestEffort;
        k.driver = CgroupDriver::Cgroupfs;
        return k;
    }
    if (name == "guaranteed" || name == "kubepods-guaranteed.slice")
        return unknown(
            quoted(name) +
            ": kubelet has no guaranteed level (Guaranteed pods sit directly under kubepods)");
    if (ends_with(name, ".slice")) {
        std::string_view stem = name.substr(0, name.size() - 6);
        if (ends_with_kubepods_word(stem, "kubepods-burstable") ||
            ends_with_kubepods_word(stem, "kubepods-besteffort")) {
            k.kind = KubeKind::QosLevel;
            k.qos = ends_with(stem, "burstable") ? QosClass::Burstable : QosClass::BestEffort;
            k.driver = CgroupDriver::Systemd;
            return k;
        }
        size_t pos = stem.rfind("-pod");
        if (pos == std::string_view::npos)
            return unknown(quoted(name) + ": a slice that is neither a QoS level nor a pod");
        std::string_view prefix = stem.substr(0, pos);
        if (ends_with_kubepods_word(prefix, "kubepods-burstable"))
            k.qos = QosClass::Burstable;
        else if (ends_with_kubepods_word(prefix, "kubepods-besteffort"))
            k.qos = QosClass::BestEffort;
        else if (ends_with_kubepods_word(prefix, "kubepods"))
            k.qos = QosClass::Guaranteed;
        else
            return unknown(quoted(name) + ": pod slice without a kubepods[-<qos>] prefix");
        Result<std::string> uid = normalize_pod_uid(stem.substr(pos + 4));
        if (!uid) return unknown(quoted(name) + ": " + uid.error().message);
        k.pod_uid = std::move(*uid);
        k.kind = KubeKind::Pod;
        k.driver = CgroupDriver::Systemd;
        return k;
    }
    if (starts_with(name, "pod")) {
        Result<std::string> uid = normalize_pod_uid(name.substr(3));
        if (!uid) return unknown(quoted(name) + ": " + uid.error().message);
        k.pod_uid = std::move(*uid);
        k.kind = KubeKind::Pod;
        k.driver = CgroupDriver::Cgroupfs;
        return k;  // QoS: from the parent
    }
    return unknown(quoted(name) + ": not a QoS level (burstable, besteffort) or a pod<uid> cgroup");
}

KubeName classify_container_level(std::string_view name) {
    KubeName k;
    std::string_view stem = name;
    const bool scope = ends_with(name, ".scope");
    if (scope) stem = name.substr(0, name.size() - 6);
    k.driver = scope ? CgroupDriver::Systemd : CgroupDriver::Cgroupfs;

    struct Prefix {
        std::string_view text;
        KubeKind kind;
        ContainerRuntime runtime;
    };
    // Longest first: "crio-conmon-" before "crio-".
    static constexpr Prefix kPrefixes[] = {
        {"crio-conmon-", KubeKind::Conmon, ContainerRuntime::Crio},
        {"cri-containerd-", KubeKind::Container, ContainerRuntime::Containerd},
        {"crio-", KubeKind::Container, ContainerRuntime::Crio},
        {"docker-", KubeKind::Container, ContainerRuntime::Docker},
    };
    for (const auto& p : kPrefixes) {
        if (!starts_with(stem, p.text)) continue;
        std::string_view id = stem.substr(p.text.size());
        if (!valid_container_id(id))
            return unknown(quoted(name) + ": malformed container id after \"" +
                           std::string(p.text) + "\"");
        k.kind = p.kind;
        k.runtime = p.runtime;
        k.container_id = std::string(id);
        return k;
    }
    if (!scope && valid_container_id(stem)) {
        // cgroupfs driver: the bare id (containerd or docker).
        k.kind = KubeKind::Container;
        k.container_id = std::string(stem);
        return k;
    }
    return unknown(quoted(name) + ": not a container id or a <runtime>-<id>.scope name");
}

KubePath classify_cgroup_path(std::string_view path) {
    KubePath out;
    std::vector<std::string_view> parts;
    size_t i = 0;
    while (i < path.size()) {
        size_t j = path.find('/', i);
        if (j == std::string_view::npos) j = path.size();
        if (j > i) parts.push_back(path.substr(i, j - i));
        i = j + 1;
    }
    size_t k = 0;
    for (; k < parts.size(); ++k)
        if (is_kubepods_name(parts[k])) break;
    if (k == parts.size()) {
        out.reason = "not under kubepods";
        return out;
    }
    out.in_kubepods = true;
    for (size_t p = 0; p <= k; ++p) out.kubepods += "/" + std::string(parts[p]);
    if (++k == parts.size()) {
        out.reason = "the kubepods cgroup itself";
        return out;
    }
    KubeName n = classify_pod_level(parts[k]);
    QosClass level_qos = QosClass::Guaranteed;  // directly under kubepods
    if (n.kind == KubeKind::QosLevel) {
        out.kind = KubeKind::QosLevel;
        out.qos = level_qos = n.qos;
        out.driver = n.driver;
        if (++k == parts.size()) return out;
        n = classify_pod_level(parts[k]);
        if (n.kind == KubeKind::QosLevel)
            n = unknown(std::string(parts[k]) + ": a QoS level inside a QoS level");
    }
    if (n.kind != KubeKind::Pod) {
        out.reason = n.reason;
        return out;
    }
    out.kind = KubeKind::Pod;
    // systemd names carry the QoS; cgroupfs names take it from where they sit.
    out.qos = n.driver == CgroupDriver::Systemd ? n.qos : level_qos;
    out.driver = n.driver;
    out.pod_uid = n.pod_uid;
    if (++k == parts.size()) return out;
    KubeName c = classify_container_level(parts[k]);
    if (c.kind != KubeKind::Container && c.kind != KubeKind::Conmon) {
        out.reason = c.reason;
        return out;
    }
    out.kind = c.kind;
    out.runtime = c.runtime;
    out.container_id = c.container_id;
    return out;  // deeper levels (a runtime's own sub-cgroups) belong to the container
}

}  // namespace oomguard
