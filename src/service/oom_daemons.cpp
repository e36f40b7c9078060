#include "service/oom_daemons.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

namespace oomguard {

namespace {

constexpr size_t kMaxProcesses = 1 << 17;
// comm is at most 15 characters: "systemd-oomd" fits.
constexpr const char* kKnown[] = {"earlyoom", "systemd-oomd", "nohang"};

std::string read_comm(int dirfd, const char* pid) {
    std::string path = std::string(pid) + "/comm";
    int fd = ::openat(dirfd, path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "";
    char buf[32];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) return "";
    std::string s(buf, static_cast<size_t>(n));
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

}  // namespace

std::vector<OtherOomDaemon> find_other_oom_daemons(const std::string& proc_root) {
    std::vector<OtherOomDaemon> found;
    DIR* d = ::opendir(proc_root.c_str());
    if (!d) return found;
    const int dirfd = ::dirfd(d);
    size_t seen = 0;
    while (const dirent* e = ::readdir(d)) {
        if (++seen > kMaxProcesses) break;
        const char* name = e->d_name;
        if (*name < '1' || *name > '9') continue;  // pids only
        char* end = nullptr;
        const long pid = std::strtol(name, &end, 10);
        if (*end || pid <= 0 || pid == ::getpid()) continue;
        const std::string comm = read_comm(dirfd, name);
        for (const char* k : kKnown) {
            if (comm != k) continue;
            auto it = std::find_if(found.begin(), found.end(),
                                   [&](const OtherOomDaemon& o) { return o.name == comm; });
            if (it == found.end())
                found.push_back({comm, static_cast<int>(pid)});
            else
                it->pid = std::min(it->pid, static_cast<int>(pid));
        }
    }
    ::closedir(d);
    std::sort(found.begin(), found.end(),
              [](const OtherOomDaemon& a, const OtherOomDaemon& b) { return a.name < b.name; });
    return found;
}

std::string coexistence_advice(const std::string& name) {
    if (name == "earlyoom")
        return "earlyoom kills the task with the highest oom_score itself when MemAvailable "
               "and SwapFree both fall below its own levels (-m/-s, 10% by default): whichever "
               "level is crossed first acts, and in one episode both may kill. Keep one: "
               "systemctl disable --now earlyoom, or set earlyoom's -m well below "
               "min_available so that it only acts if oomguard cannot";
    if (name == "systemd-oomd")
        return "systemd-oomd kills whole cgroups of units with ManagedOOMMemoryPressure= or "
               "ManagedOOMSwap= set, on memory pressure (PSI) or swap use, not on MemAvailable: "
               "it may act before or after oomguard in one episode. On a Kubernetes node "
               "kubelet's cgroups are not managed by it unless configured; to keep oomguard "
               "alone: systemctl disable --now systemd-oomd (and mask it)";
    return name + " is another userspace OOM killer: in one episode both may kill; keep one";
}

void warn_other_oom_daemons(Journal& journal, const std::string& proc_root) {
    for (const auto& o : find_other_oom_daemons(proc_root))
        journal.log(Event::OtherOomDaemon, LOG_WARNING,
                    o.name + " (pid " + std::to_string(o.pid) +
                        ") is running on this node too: " + coexistence_advice(o.name),
                    {{"OOMGUARD_OTHER_DAEMON", o.name},
                     {"OOMGUARD_OTHER_DAEMON_PID", std::to_string(o.pid)}});
}

}  // namespace oomguard
