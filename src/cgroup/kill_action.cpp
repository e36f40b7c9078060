#include "cgroup/kill_action.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "core/oom_kill.hpp"

namespace oomguard {

ActionResult KillCgroupAction::act(const Config& config, bool dry_run) {
    ActionResult r;
    victim_.reset();
    const bool fallback = config.action.fallback_sysrq;
    const Duration budget = config.kubernetes.scan_budget;
    auto not_done = [&](std::string why) {
        // Nothing was killed: sysrq instead (the daemon says so), or a failure.
        r.what = "kill-cgroup: " + std::move(why);
        if (fallback) {
            r.outcome = TriggerOutcome::NotHandled;
            r.what += ", falling back to sysrq: ";
        } else {
            r.outcome = TriggerOutcome::Failed;
            r.what += "; fallback_sysrq = false: nothing done";
        }
        return r;
    };
    if (!monitor_.configured()) return not_done(monitor_.error() ? monitor_.error()->message : "");
    // The whole choice is bounded by scan_budget: the ranking, and the pod log
    // listings that name pods (partial listings resume in the background).
    // Usages read before the trigger miss what a fast leak did since (a new
    // container, one grown): always re-read them (~1 ms for 1000 pods).
    const Duration t0 = clock_.now();
    ranking_.refresh(budget, false);
    monitor_.names().set_deadline(t0 + budget);
    KillPolicy policy{config.kubernetes.exclude_namespaces, config.kubernetes.kill_guaranteed,
                      still_dying()};
    VictimChoice v = choose_victim(monitor_, policy);
    monitor_.names().set_deadline(Duration::max());
    std::string skipped;
    for (const auto& s : v.skipped) skipped += (skipped.empty() ? "" : "; ") + s;
    if (!v.found)
        return not_done("no eligible container (" + v.why_none +
                        (skipped.empty() ? "" : ": " + skipped) + ")");
    const CgroupInfo& c = v.container;
    std::string target = "container " + container_label(c.container_name, c.container_id, c.path) +
                         " of pod " + v.pod.display_name() + " (" + to_string(v.pod.qos) +
                         ", working set " + format_bytes(c.working_set) + ", cgroup " + c.path +
                         ")";
    if (dry_run) {
        r.outcome = TriggerOutcome::DryRun;
        r.what = "dry-run: would kill " + target;
        victim_ = v;
        return r;
    }
    KillOutcome o = kill_container_cgroup(monitor_, c);
    if (!o.ok()) return not_done("failed for " + target + ": " + o.error->message);
    host_.record_cgroup_kill();
    r.outcome = TriggerOutcome::Acted;
    r.what = "killed " + target + " via " + o.method + " in " + format_duration(o.elapsed) +
             (o.note.empty() ? "" : " (" + o.note + ")");
    watch_.start(monitor_.root_fd(), c, o, host_.state().sample.mem_available);
    killed_.push_back(c.path);
    victim_ = std::move(v);
    return r;
}

std::vector<std::string> KillCgroupAction::still_dying() {
    // A repeat in the same episode must not pick a container it already killed
    // that is still listed while its tasks die: that would be no new kill.
    const uint64_t episode = host_.state().episodes_total;
    if (episode != killed_episode_) {
        killed_.clear();
        killed_episode_ = episode;
    }
    std::erase_if(killed_, [&](const std::string& path) {
        const char* rel = path.c_str();
        while (*rel == '/') ++rel;
        int fd = ::openat(monitor_.root_fd(), rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) return true;  // gone
        long left = cgroup_task_count(fd);
        ::close(fd);
        return left <= 0;  // empty: dead (a new task there would be a new kill)
    });
    return killed_;
}

}  // namespace oomguard
