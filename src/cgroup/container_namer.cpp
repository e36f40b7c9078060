#include "cgroup/container_namer.hpp"

namespace oomguard {

const char* to_string(NameSource s) {
    switch (s) {
        case NameSource::None:
            return "none";
        case NameSource::LogLink:
            return "log-link";
        case NameSource::RuntimeState:
            return "runtime-state";
        case NameSource::OnlyLogDir:
            return "only-log-dir";
    }
    return "none";
}

Result<RuntimeNames> ContainerNamer::runtime_names(std::string_view id) {
    std::string key(id);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
    auto r = runtime_.lookup(id);
    if (!r) return r;
    // Ids are never reused: a bounded cache, dropped whole when full.
    if (cache_.size() >= kCacheMax) cache_.clear();
    cache_.emplace(std::move(key), *r);
    return r;
}

void ContainerNamer::name(std::string_view pod_uid, std::vector<ContainerSlot>& slots) {
    // 1. kubelet's links.
    for (auto& s : slots) {
        if (s.sandbox || s.id.empty() || !s.name.empty()) continue;
        s.name = logs_.container(pod_uid, s.id);
        if (!s.name.empty()) s.source = NameSource::LogLink;
    }
    // 2. The runtime's state, for what the links left.
    for (auto& s : slots) {
        if (s.id.empty() || !s.name.empty()) continue;
        auto r = runtime_names(s.id);
        if (!r) {
            if (r.error().code != ENOENT && s.note.empty())
                s.note = "runtime state: " + r.error().message;
            continue;
        }
        if (!r->pod_uid.empty() && r->pod_uid != pod_uid) {
            s.note = r->source + " state names pod " + r->pod_uid + ", not this one";
            continue;
        }
        s.pod_namespace = r->pod_namespace;
        s.pod_name = r->pod_name;
        if (r->sandbox) {
            s.sandbox = true;
            continue;
        }
        if (s.sandbox || r->container.empty()) continue;
        s.name = r->container;
        s.source = NameSource::RuntimeState;
        s.note = "named from " + r->source + "'s state";
    }
    // 3. The pod's only log directory, when nothing else is ambiguous.
    size_t unnamed = 0, named = 0;
    ContainerSlot* candidate = nullptr;
    for (auto& s : slots) {
        if (s.sandbox || s.id.empty()) continue;
        if (s.name.empty()) {
            ++unnamed;
            candidate = &s;
        } else {
            ++named;
        }
    }
    if (unnamed == 1 && named == 0) {
        auto dirs = logs_.container_dirs(pod_uid);
        if (dirs.size() == 1) {
            candidate->name = dirs[0];
            candidate->source = NameSource::OnlyLogDir;
            candidate->note = "named after the pod's only log directory";
        }
    }
    for (auto& s : slots)
        if (!s.sandbox && !s.id.empty() && s.name.empty() && s.note.empty())
            s.note =
                "no container log link or runtime state for this id (a sandbox, or logs "
                "not mounted)";
}

}  // namespace oomguard
