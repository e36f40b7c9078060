// The node audit: is this node set up so that the right thing dies? Checked at
// start, on reload and every few minutes, each finding warned about once (until
// it goes away), with the fix. Findings:
//   - a critical host service (kubelet, the container runtime, journald, the
//     bus, sshd, oomguard) with oom_score_adj above -999, or whose oom_score
//     beats every pod's, so that the kernel would kill it before any pod;
//   - kubepods without a memory limit (node allocatable not enforced), or with
//     a limit of about all of MemTotal (the same, in effect);
//   - cgroup v2 containers with memory.oom.group 0 (kubelet's
//     singleProcessOOMKill): a sysrq kill then leaves half-dead containers;
//   - vm.panic_on_oom set: sysrq 'f' would panic the node instead of killing.
// The checks are pure functions over AuditFacts; gathering reads /proc and the
// cgroup tree (about 3 small reads per task: seconds on huge nodes at worst, so
// it runs off the poll loop, in the predictor's thread).
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "util/result.hpp"

namespace oomguard {

struct AuditTask {
    int32_t pid = 0;
    std::string comm;
    int oom_score_adj = 0;
    int64_t oom_score = 0;
    std::string cgroup;  // from /proc/<pid>/cgroup
};

struct AuditFacts {
    uint64_t mem_total = 0;
    std::vector<AuditTask> critical;  // tasks of the critical services
    bool have_pod_tasks = false;
    int64_t max_pod_score = 0;  // the highest oom_score among kubepods tasks
    // kubepods and its limit (nullopt: none or unknown; see kubepods_limit_known).
    bool kubepods_found = false;
    std::string kubepods;
    bool kubepods_limit_known = false;
    std::optional<uint64_t> kubepods_limit;
    // Container cgroups on v2 with memory.oom.group 0 (paths, the first few).
    bool cgroup_v2 = false;
    uint32_t containers = 0;
    uint32_t containers_without_oom_group = 0;
    std::vector<std::string> oom_group_examples;
    int panic_on_oom = 0;       // vm.panic_on_oom; -1 unknown
    std::vector<Error> errors;  // what could not be read (the audit goes on)
};

// In the order of kAuditChecks (src/core/prediction.hpp), which names them.
enum class AuditKind {
    CriticalAdj,           // oom_score_adj > -999 on a critical service
    CriticalOutranksPods,  // its oom_score beats every pod task's
    NoAllocatable,         // kubepods has no memory limit
    AllocatableIsAll,      // kubepods' limit is >= 98 % of MemTotal
    OomGroupOff,           // v2 containers with memory.oom.group 0
    PanicOnOom,            // vm.panic_on_oom != 0
};
const char* to_string(AuditKind k);  // "critical-oom-score-adj", ...

struct AuditFinding {
    AuditKind kind;
    std::string
        subject;  // what it is about: "containerd (pid 412)", "kubepods.slice", "vm.panic_on_oom"
    std::string message;  // what is wrong, in a sentence
    std::string fix;      // what to do about it
    std::string key() const { return std::string(to_string(kind)) + ":" + subject_key; }
    std::string subject_key;  // stable across pids (unit or comm), for once-per-finding
};

// The critical services, by comm (as /proc/<pid>/comm has it, 15 characters).
bool is_critical_comm(const std::string& comm);
// "containerd.service" from "/system.slice/containerd.service" ("" if none).
std::string unit_of_cgroup(const std::string& cgroup);

std::vector<AuditFinding> audit_node(const AuditFacts& facts);

// Reads the facts: tasks under <proc_root>, kubepods at <kubepods_dir> (an
// absolute path, "" when there is none; `cgroup_v2` says which files to read).
AuditFacts gather_audit_facts(const std::string& proc_root, const std::string& kubepods_dir,
                              bool cgroup_v2, uint64_t mem_total);

// Once per finding: which of `now` are new since the last call (a finding that
// went away and came back is new again).
class AuditMemory {
public:
    std::vector<AuditFinding> fresh(const std::vector<AuditFinding>& now);
    size_t active() const { return keys_.size(); }

private:
    std::set<std::string> keys_;
};

}  // namespace oomguard
