// The kill-cgroup action (TriggerHook::act in kill-cgroup mode): choose the
// victim container within [kubernetes] scan_budget (ranking and pod log
// listings) and kill its cgroup. A successful cgroup.kill write or SIGKILL is
// the action; the emptying is watched by KillWatch.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cgroup/cgroup_killer.hpp"
#include "cgroup/kill_watch.hpp"
#include "cgroup/ranking_cache.hpp"
#include "config/config.hpp"
#include "core/action_result.hpp"
#include "core/clock.hpp"
#include "core/host.hpp"

namespace oomguard {

class KillCgroupAction {
public:
    KillCgroupAction(Host& host, CgroupMonitor& monitor, RankingCache& ranking, KillWatch& watch,
                     const Clock& clock)
        : host_(host), monitor_(monitor), ranking_(ranking), watch_(watch), clock_(clock) {}

    // NotHandled: nothing was killed and the daemon writes sysrq (fallback_sysrq);
    // Failed: nothing was killed and nothing else is done.
    ActionResult act(const Config& config, bool dry_run);
    // The container this trigger killed (or would kill, dry-run), taken once by
    // the trigger's describe(). Empty when nothing was chosen.
    std::optional<VictimChoice> take_victim() { return std::exchange(victim_, std::nullopt); }

private:
    Host& host_;
    CgroupMonitor& monitor_;
    RankingCache& ranking_;
    KillWatch& watch_;
    const Clock& clock_;
    std::optional<VictimChoice> victim_;
    // Containers killed in this episode (episodes_total when killed).
    std::vector<std::string> killed_;
    uint64_t killed_episode_ = 0;

    std::vector<std::string> still_dying();
};

}  // namespace oomguard
