#include "cgroup/proc_tasks.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string_view>
#include <vector>

#include "cgroup/memcg_stats.hpp"
#include "sensors/oom_score.hpp"

namespace oomguard {
namespace {

// The first line of <proc>/<pid>/<file> into buf (NUL-terminated); false when unreadable.
bool read_proc_file(const std::string& proc_root, long pid, const char* file, char* buf,
                    size_t size) {
    std::string path = proc_root + "/" + std::to_string(pid) + "/" + file;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return false;
    ssize_t n = ::read(fd, buf, size - 1);
    ::close(fd);
    if (n <= 0) return false;
    buf[n] = 0;
    return true;
}

}  // namespace

bool names_pause(std::string_view s) {
    size_t slash = s.rfind('/');
    if (slash != std::string_view::npos) s = s.substr(slash + 1);
    return s == "pause";
}

TaskScan scan_cgroup_tasks(int dirfd, const std::string& proc_root) {
    TaskScan t;
    char buf[4096];
    size_t len = 0;
    if (read_at(dirfd, "cgroup.procs", buf, sizeof buf - 1, len) != ReadStatus::Ok) {
        t.note = "cgroup.procs unreadable";
        return t;
    }
    buf[len] = 0;
    std::vector<long> pids;
    size_t hidden = 0;
    for (char* p = buf; *p;) {
        char* end = nullptr;
        long v = std::strtol(p, &end, 10);
        if (end == p) break;
        if (v > 0)
            pids.push_back(v);
        else
            ++hidden;
        p = end;
        while (*p == '\n') ++p;
    }
    t.tasks = static_cast<long>(pids.size() + hidden);
    if (pids.empty()) {
        t.note = hidden ? "its tasks are in another pid namespace (pid 0)" : "no tasks";
        return t;
    }
    size_t readable = 0;
    for (size_t i = 0; i < pids.size() && i < 64; ++i) {
        char v[32];
        // A value that is not a number counts as unreadable: a guess of 0 could
        // let a critical pod (-997) pass as killable.
        Result<int64_t> adj = Error::logic("unreadable");
        if (read_proc_file(proc_root, pids[i], "oom_score_adj", v, sizeof v))
            adj = parse_proc_int(v);
        if (adj) {
            const int a = static_cast<int>(*adj);
            if (!t.min_oom_score_adj || a < *t.min_oom_score_adj) t.min_oom_score_adj = a;
            ++readable;
        }
        if (i == 0) {
            char comm[64];
            if (read_proc_file(proc_root, pids[i], "comm", comm, sizeof comm)) {
                std::string_view n(comm);
                if (!n.empty() && n.back() == '\n') n.remove_suffix(1);
                t.sandbox = t.sandbox || n == "pause";
            }
            char cmd[256];
            if (read_proc_file(proc_root, pids[i], "cmdline", cmd, sizeof cmd))
                t.sandbox = t.sandbox || names_pause(cmd);  // argv[0], up to its NUL
        }
    }
    if (!readable) t.note = "/proc/<pid>/oom_score_adj unreadable under " + proc_root;
    // Without comm or cmdline: a lone task at the sandbox's oom_score_adj.
    if (pids.size() == 1 && hidden == 0 && t.min_oom_score_adj == kSandboxOomScoreAdj)
        t.sandbox = true;
    return t;
}

}  // namespace oomguard
