// The kill-cgroup action: choose the heaviest eligible container and kill its
// cgroup. Victims go in QoS order (BestEffort, Burstable, then Guaranteed only
// when allowed), heaviest pod first within a class; excluded namespaces are
// skipped, and nothing outside kubepods is ever touched.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cgroup/cgroup_monitor.hpp"
#include "core/clock.hpp"
#include "core/defaults.hpp"
#include "util/result.hpp"

namespace oomguard {

struct KillPolicy {
    std::vector<std::string> exclude_namespaces{defaults::kExcludeNamespaces.begin(),
                                                defaults::kExcludeNamespaces.end()};
    bool kill_guaranteed = defaults::kKillGuaranteed;
    // Container cgroups killed earlier in this episode and still listing tasks
    // (dying): killing them again would be no new kill, so they are skipped.
    std::vector<std::string> dying;
};

struct VictimChoice {
    bool found = false;
    CgroupInfo pod;
    CgroupInfo container;
    std::vector<std::string> skipped;  // "<pod>: <why>", the first few
    std::string why_none;              // when !found
    size_t dying_skipped = 0;          // containers skipped as killed and still dying
};

// kubelet gives critical pods -997 (and the runtime its sandbox -998, itself -999).
constexpr int kCriticalOomScoreAdj = -997;

// Uses the monitor's current ranking (refresh it first). Never picks a container
// with a task at oom_score_adj <= kCriticalOomScoreAdj, nor one whose tasks'
// oom_score_adj cannot be read.
VictimChoice choose_victim(CgroupMonitor& monitor, const KillPolicy& policy);

struct KillOutcome {
    // Why nothing was killed; nullopt: the kill was delivered (cgroup.kill
    // written, or at least one SIGKILL sent, v1). That is the action; the cgroup
    // empties later (watch it with cgroup_task_count()), dying multi-GiB
    // processes stay listed for a while. What was tried is said either way.
    std::optional<Error> error = Error::logic("not attempted");
    bool ok() const { return !error; }
    std::string method;    // "cgroup.kill" or "SIGKILL to cgroup.procs"
    size_t signalled = 0;  // SIGKILLs sent (v1)
    size_t rounds = 0;
    Duration elapsed{0};
    std::string note;  // e.g. signalled by pid (no pidfd_open), for the journal
};

// Kills every process of a container cgroup: v2 writes "1" to cgroup.kill; v1
// (or a kernel without cgroup.kill) SIGKILLs every pid in cgroup.procs of the
// cgroup and its descendants through a pidfd, checked to still be in the cgroup
// after pidfd_open, so a reused pid is never hit (plain kill() only where
// pidfd_open is ENOSYS, and `note` says so). Does not wait for the cgroup to
// empty. A cgroup that shows no pid (only "0": another pid namespace) is a
// failure: nothing was killed.
// Refuses anything that is not a container cgroup under the monitor's kubepods.
KillOutcome kill_container_cgroup(CgroupMonitor& monitor, const CgroupInfo& container);

// The kill itself, on an open cgroup directory (no checks: kill_container_cgroup
// makes them). `label` names the cgroup in errors; `elapsed` is read on `clock`.
KillOutcome kill_cgroup_at(int dirfd, CgroupVersion version, const std::string& label,
                           const Clock& clock = monotonic_clock());

// SIGKILLs the visible tasks of dirfd's cgroup subtree (the v1 path; also the
// re-kill of tasks forked after a kill). Adds to o.signalled / o.rounds / o.note;
// o.error: nullopt once a SIGKILL was sent, else why none was.
void signal_cgroup_tasks(int dirfd, const std::string& label, KillOutcome& o);

// Tasks listed in cgroup.procs of dirfd and its descendants; `hidden` counts the
// "0" entries of tasks in another pid namespace. -1: the cgroup is gone.
long cgroup_task_count(int dirfd, size_t* hidden = nullptr);

// True when `path` is strictly below `kubepods` and has no "." or ".." parts.
bool path_inside(std::string_view path, std::string_view kubepods);

}  // namespace oomguard
