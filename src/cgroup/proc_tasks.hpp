// The tasks of a container cgroup as /proc sees them: how many, the lowest
// oom_score_adj among them (the kill action never picks a container holding a
// critical task), and whether it looks like the pod's pause sandbox (comm or
// argv[0] "pause", or one task at the runtime's -998).
//
// Why its own reader: the sandbox check needs /proc/<pid>/comm and cmdline,
// which no other cgroup code reads, and the proc root is a fixture in tests.
// Cost: cgroup.procs plus up to 64 oom_score_adj reads and one comm + cmdline
// read, per container of the pod being reported; no allocation beyond the pid
// list.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace oomguard {

struct TaskScan {
    long tasks = -1;  // listed in cgroup.procs (-1: unreadable), pid-0 entries included
    std::optional<int> min_oom_score_adj;  // nullopt: none readable (note says why)
    bool sandbox = false;                  // looks like the pause sandbox
    std::string note;
};

// kubelet asks containerd and cri-o to run the sandbox at -998.
constexpr int kSandboxOomScoreAdj = -998;

// Reads dirfd's cgroup.procs and the tasks' /proc entries under proc_root.
TaskScan scan_cgroup_tasks(int dirfd, const std::string& proc_root);

// "pause", "/pause", "/usr/bin/pause": a basename of "pause".
bool names_pause(std::string_view argv0);

}  // namespace oomguard
