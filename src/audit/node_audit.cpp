#include "audit/node_audit.hpp"

#include <algorithm>
#include <charconv>
#include <filesystem>

#include "core/prediction.hpp"
#include "sensors/oom_score.hpp"
#include "util/small_file.hpp"
#include "util/units.hpp"

namespace oomguard {

namespace fs = std::filesystem;

const char* to_string(AuditKind k) { return kAuditChecks[static_cast<size_t>(k)]; }

bool is_critical_comm(const std::string& comm) {
    static const char* const names[] = {"kubelet", "containerd",      "crio",        "cri-o",
                                        "dockerd", "systemd-journal", "dbus-daemon", "dbus-broker",
                                        "sshd",    "oomguard"};
    return std::any_of(std::begin(names), std::end(names),
                       [&](const char* n) { return comm == n; });
}

std::string unit_of_cgroup(const std::string& cgroup) {
    size_t slash = cgroup.rfind('/');
    std::string last = slash == std::string::npos ? cgroup : cgroup.substr(slash + 1);
    for (const char* suffix : {".service", ".scope"}) {
        size_t n = std::char_traits<char>::length(suffix);
        if (last.size() > n && last.compare(last.size() - n, n, suffix) == 0) return last;
    }
    return "";
}

std::vector<AuditFinding> audit_node(const AuditFacts& f) {
    std::vector<AuditFinding> out;
    for (const AuditTask& t : f.critical) {
        const std::string unit = unit_of_cgroup(t.cgroup);
        const std::string who =
            t.comm + " (pid " + std::to_string(t.pid) + (unit.empty() ? "" : ", " + unit) + ")";
        const std::string fix =
            unit.empty()
                ? "start " + t.comm + " with oom_score_adj -999 (as kubelet does for itself)"
                : "set OOMScoreAdjust=-999 in a drop-in: systemctl edit " + unit +
                      ", [Service] OOMScoreAdjust=-999, then restart it";
        const std::string key = unit.empty() ? t.comm : unit;
        if (t.oom_score_adj > -999)
            out.push_back(
                {AuditKind::CriticalAdj, who,
                 who + " has oom_score_adj " + std::to_string(t.oom_score_adj) +
                     " (above -999): the kernel may kill it before Guaranteed pods (-997)",
                 fix, key});
        if (f.have_pod_tasks && t.oom_score > f.max_pod_score)
            out.push_back({AuditKind::CriticalOutranksPods, who,
                           who + " has oom_score " + std::to_string(t.oom_score) +
                               ", above every pod's (highest " + std::to_string(f.max_pod_score) +
                               "): the kernel's OOM killer, and oomguard's sysrq trigger, would "
                               "kill it first",
                           fix, key});
    }
    if (f.kubepods_found && f.kubepods_limit_known) {
        if (!f.kubepods_limit)
            out.push_back({AuditKind::NoAllocatable, f.kubepods,
                           f.kubepods +
                               " has no memory limit: kubelet does not enforce node allocatable "
                               "for pods, so pods "
                               "can take the memory the kubelet, the runtime and the system need",
                           "run kubelet with --enforce-node-allocatable=pods and "
                           "--kube-reserved/--system-reserved "
                           "(or kubeReserved/systemReserved in its config file)",
                           f.kubepods});
        else if (f.mem_total > 0 && *f.kubepods_limit >= f.mem_total / 100 * 98)
            out.push_back({AuditKind::AllocatableIsAll, f.kubepods,
                           f.kubepods + " is limited to " + format_bytes(*f.kubepods_limit) + ", " +
                               std::to_string(*f.kubepods_limit * 100 / f.mem_total) +
                               "% of MemTotal: node allocatable is enforced but reserves nothing "
                               "for the system",
                           "set kubeReserved/systemReserved (memory) in kubelet's config",
                           f.kubepods});
    }
    if (f.cgroup_v2 && f.containers_without_oom_group > 0) {
        std::string eg;
        for (const auto& p : f.oom_group_examples) eg += (eg.empty() ? "" : ", ") + p;
        out.push_back(
            {AuditKind::OomGroupOff, "memory.oom.group",
             std::to_string(f.containers_without_oom_group) + " of " +
                 std::to_string(f.containers) +
                 " container cgroups have memory.oom.group 0 (e.g. " + eg +
                 "): an OOM kill takes one task and leaves the rest of the container running",
             "turn off kubelet's singleProcessOOMKill (the default on cgroup v2 is a group kill)",
             "memory.oom.group"});
    }
    if (f.panic_on_oom > 0)
        out.push_back(
            {AuditKind::PanicOnOom, "vm.panic_on_oom",
             "vm.panic_on_oom is " + std::to_string(f.panic_on_oom) +
                 ": an OOM, and oomguard's sysrq 'f', panics the node instead of killing one task",
             "sysctl -w vm.panic_on_oom=0 (and in /etc/sysctl.d/)", "vm.panic_on_oom"});
    return out;
}

namespace {

Result<std::string> read_small(const fs::path& p) { return read_small_file(p.string()); }

std::string first_line(std::string s) {
    size_t nl = s.find('\n');
    if (nl != std::string::npos) s.resize(nl);
    return s;
}

}  // namespace

AuditFacts gather_audit_facts(const std::string& proc_root, const std::string& kubepods_dir,
                              bool cgroup_v2, uint64_t mem_total) {
    AuditFacts f;
    f.mem_total = mem_total;
    f.cgroup_v2 = cgroup_v2;
    std::error_code ec;
    // error_code overloads throughout: tasks and cgroups come and go while we walk.
    fs::directory_iterator dir(proc_root, ec), end;
    for (; !ec && dir != end; dir.increment(ec)) {
        const fs::directory_entry& e = *dir;
        const std::string name = e.path().filename().string();
        if (name.empty() ||
            !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; }))
            continue;
        auto score_text = read_small(e.path() / "oom_score");
        if (!score_text) continue;  // exited
        auto score = parse_oom_score(*score_text);
        if (!score) continue;
        auto comm_text = read_small(e.path() / "comm");
        if (!comm_text) continue;
        const std::string comm = first_line(std::move(*comm_text));
        std::string cg;
        if (auto text = read_small(e.path() / "cgroup")) {
            auto c = parse_proc_cgroup(*text);
            if (c) cg = *c;
        }
        if (cg.find("kubepods") != std::string::npos) {
            if (*score > 0) {
                f.have_pod_tasks = true;
                f.max_pod_score = std::max(f.max_pod_score, *score);
            }
            continue;  // a pod's process is not a host service, whatever its name
        }
        if (!is_critical_comm(comm)) continue;
        AuditTask t;
        if (std::from_chars(name.data(), name.data() + name.size(), t.pid).ec != std::errc())
            continue;
        t.comm = comm;
        t.oom_score = *score;
        t.cgroup = cg;
        if (auto text = read_small(e.path() / "oom_score_adj")) {
            Result<int64_t> adj = parse_proc_int(*text);
            if (!adj) {
                f.errors.push_back(
                    Error::logic(e.path().string() + "/oom_score_adj: " + adj.error().message));
                continue;
            }
            t.oom_score_adj = static_cast<int>(*adj);
        }
        f.critical.push_back(std::move(t));
    }
    if (ec) f.errors.push_back(Error{ec.value(), proc_root + ": " + ec.message()});

    f.panic_on_oom = -1;  // unknown
    if (auto text = read_small(fs::path(proc_root) / "sys/vm/panic_on_oom")) {
        Result<int64_t> v = parse_proc_int(*text);
        if (v)
            f.panic_on_oom = static_cast<int>(*v);
        else
            f.errors.push_back(
                Error::logic(proc_root + "/sys/vm/panic_on_oom: " + v.error().message));
    }

    if (!kubepods_dir.empty()) {
        f.kubepods_found = fs::is_directory(kubepods_dir, ec);
        f.kubepods = fs::path(kubepods_dir).filename().string();
        const char* limit_file = cgroup_v2 ? "memory.max" : "memory.limit_in_bytes";
        Result<std::string> limit_text = Error::logic("no kubepods cgroup");
        if (f.kubepods_found) limit_text = read_small(fs::path(kubepods_dir) / limit_file);
        if (limit_text) {
            const std::string text = first_line(std::move(*limit_text));
            f.kubepods_limit_known = true;
            uint64_t v = 0;
            auto r = std::from_chars(text.data(), text.data() + text.size(), v);
            // v1 "no limit" is a huge page-aligned number (PAGE_COUNTER_MAX pages).
            if (text == "max" || r.ec != std::errc() || (!cgroup_v2 && v >= (uint64_t{1} << 62)))
                f.kubepods_limit.reset();
            else
                f.kubepods_limit = v;
        }
        if (f.kubepods_found && cgroup_v2) {
            // Containers sit two or three levels down (kubepods[/qos]/pod/container).
            for (auto it = fs::recursive_directory_iterator(kubepods_dir, ec);
                 !ec && it != fs::end(it); it.increment(ec)) {
                if (it.depth() > 2) {
                    it.disable_recursion_pending();
                    continue;
                }
                if (!it->is_directory(ec)) continue;
                const std::string n = it->path().filename().string();
                bool container = (n.size() > 6 && n.compare(n.size() - 6, 6, ".scope") == 0 &&
                                  n.find("conmon") == std::string::npos) ||
                                 (n.size() == 64 && it.depth() >= 1);
                if (!container) continue;
                it.disable_recursion_pending();
                ++f.containers;
                auto group = read_small(it->path() / "memory.oom.group");
                if (group && first_line(std::move(*group)) == "0") {
                    ++f.containers_without_oom_group;
                    if (f.oom_group_examples.size() < 3)
                        f.oom_group_examples.push_back(
                            fs::relative(it->path(), kubepods_dir).string());
                }
            }
        }
    }
    return f;
}

std::vector<AuditFinding> AuditMemory::fresh(const std::vector<AuditFinding>& now) {
    std::set<std::string> keys;
    std::vector<AuditFinding> out;
    for (const auto& f : now) {
        keys.insert(f.key());
        if (!keys_.count(f.key())) out.push_back(f);
    }
    keys_ = std::move(keys);
    return out;
}

}  // namespace oomguard
