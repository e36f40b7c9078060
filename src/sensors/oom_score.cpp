#include "sensors/oom_score.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>

#include "util/lines.hpp"

namespace oomguard {

namespace {

// Reads a small /proc file relative to `dirfd` into `buf`; -1 on error (errno set).
ssize_t read_at(int dirfd, const char* path, char* buf, size_t size) {
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, size);
    int err = errno;
    close(fd);
    errno = err;
    return n;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

template <typename T>
bool to_int(std::string_view s, T& out) {
    s = trim(s);
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

// The value in kB of "<key>:   123 kB" in a status/meminfo text; false if absent.
bool kb_field(std::string_view text, std::string_view key, uint64_t& out) {
    std::string_view rest = text, line;
    while (next_line(rest, line)) {
        if (line.size() > key.size() && line.substr(0, key.size()) == key &&
            line[key.size()] == ':') {
            std::string_view v = trim(line.substr(key.size() + 1));
            if (v.size() > 3 && v.substr(v.size() - 3) == " kB") v.remove_suffix(3);
            return to_int(v, out);
        }
    }
    return false;
}

bool is_pid_name(const char* s) {
    if (*s == '\0') return false;
    for (; *s; ++s)
        if (*s < '0' || *s > '9') return false;
    return true;
}

}  // namespace

const TaskScore* pick_victim(std::span<const TaskScore> tasks) {
    const TaskScore* best = nullptr;
    for (const TaskScore& t : tasks) {
        if (t.oom_score <= 0) continue;
        if (best == nullptr || t.oom_score > best->oom_score) {
            best = &t;
            continue;
        }
        if (t.oom_score < best->oom_score) continue;
        if (t.badness != best->badness) {
            if (t.badness > best->badness) best = &t;
            continue;
        }
        if (t.start_ticks >= best->start_ticks) best = &t;  // the kernel's walk: later wins
    }
    return best;
}

Result<int64_t> parse_oom_score(std::string_view text) {
    int64_t v = 0;
    if (!to_int(text, v) || v < 0) return Error::logic("oom_score: not a non-negative number");
    return v;
}

Result<int64_t> parse_proc_int(std::string_view text) {
    int64_t v = 0;
    if (!to_int(text, v)) return Error::logic("not a number");
    return v;
}

Result<int64_t> badness_from_status(std::string_view status, int oom_score_adj,
                                    uint64_t total_pages, uint64_t page_size) {
    if (page_size < 1024 || page_size % 1024 != 0)
        return Error::logic("page size not a multiple of 1 KiB");
    uint64_t rss = 0, swap = 0, pte = 0;
    if (!kb_field(status, "VmRSS", rss))
        return Error::logic("status: no VmRSS (a kernel thread or a zombie)");
    (void)kb_field(status, "VmSwap", swap);  // absent without CONFIG_SWAP
    (void)kb_field(status, "VmPTE", pte);
    const uint64_t page_kb = page_size / 1024;
    int64_t points = static_cast<int64_t>(rss / page_kb + swap / page_kb + pte * 1024 / page_size);
    points += static_cast<int64_t>(oom_score_adj) * static_cast<int64_t>(total_pages / 1000);
    return points;
}

Result<uint64_t> parse_stat_starttime(std::string_view stat) {
    size_t close_paren = stat.rfind(')');
    if (close_paren == std::string_view::npos) return Error::logic("stat: no ')' after comm");
    std::string_view rest = stat.substr(close_paren + 1);
    // After ')' come field 3 (state) onwards; starttime is field 22.
    int field = 2;
    size_t pos = 0;
    while (pos < rest.size()) {
        while (pos < rest.size() && rest[pos] == ' ') ++pos;
        size_t end = rest.find(' ', pos);
        if (end == std::string_view::npos) end = rest.size();
        if (pos < end && ++field == 22) {
            uint64_t v = 0;
            if (!to_int(rest.substr(pos, end - pos), v))
                return Error::logic("stat: starttime not a number");
            return v;
        }
        pos = end;
    }
    return Error::logic("stat: fewer than 22 fields");
}

Result<std::string> parse_proc_cgroup(std::string_view text) {
    // The memory controller's hierarchy is where the kernel accounts the task
    // (and what its OOM report names): v1's "memory" line when memory is on v1
    // (hybrid hosts), else the v2 line "0::<path>".
    std::string_view v1_memory, v2, rest = text, line;
    while (next_line(rest, line)) {
        size_t a = line.find(':');
        size_t b = a == std::string_view::npos ? a : line.find(':', a + 1);
        if (b == std::string_view::npos) continue;
        std::string_view id = line.substr(0, a), ctrls = line.substr(a + 1, b - a - 1),
                         path = line.substr(b + 1);
        if (path.empty() || path.front() != '/') continue;
        if (id == "0" && ctrls.empty()) {
            v2 = path;
            continue;
        }
        for (size_t c = 0; c <= ctrls.size();) {
            size_t e = ctrls.find(',', c);
            if (e == std::string_view::npos) e = ctrls.size();
            if (ctrls.substr(c, e - c) == "memory") v1_memory = path;
            c = e + 1;
        }
    }
    if (!v1_memory.empty()) return std::string(v1_memory);
    if (!v2.empty()) return std::string(v2);
    return Error::logic("cgroup: no v2 line and no v1 memory line");
}

OomScoreScanner::OomScoreScanner(std::string proc_root, const Clock& clock)
    : proc_root_(std::move(proc_root)), clock_(clock) {}

Result<PredictedVictim> OomScoreScanner::scan(Duration budget) {
    const Duration start = clock_.now();
    stats_ = OomScanStats{};
    tasks_.clear();
    int procfd = open(proc_root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (procfd < 0) return Error::sys(errno, proc_root_);
    DIR* dir = fdopendir(dup(procfd));
    if (dir == nullptr) {
        int err = errno;
        close(procfd);
        return Error::sys(err, proc_root_);
    }
    char path[64];
    char buf[64];
    while (dirent* de = readdir(dir)) {
        if (!is_pid_name(de->d_name)) continue;
        ++stats_.tasks;
        if ((stats_.tasks & 63) == 0 && clock_.now() - start > budget) {
            stats_.deadline_hit = true;
            break;
        }
        TaskScore t;
        if (!to_int(std::string_view(de->d_name), t.pid)) continue;
        std::snprintf(path, sizeof path, "%d/oom_score", t.pid);
        ssize_t n = read_at(procfd, path, buf, sizeof buf);
        if (n <= 0) {
            ++stats_.vanished;  // exited between readdir and open (ENOENT/ESRCH)
            continue;
        }
        auto score = parse_oom_score(std::string_view(buf, static_cast<size_t>(n)));
        if (!score || *score <= 0) continue;
        ++stats_.killable;
        t.oom_score = *score;
        tasks_.push_back(t);
    }
    closedir(dir);

    // Tasks tied at the top: refine with the kernel's own formula and start time.
    int64_t top = 0;
    uint32_t at_top = 0;
    for (const TaskScore& t : tasks_) {
        if (t.oom_score > top) {
            top = t.oom_score;
            at_top = 1;
        } else if (t.oom_score == top) {
            ++at_top;
        }
    }
    if (at_top > 1) {
        uint64_t total_pages = 0;
        const uint64_t page_size = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
        char meminfo[4096];
        ssize_t m = read_at(procfd, "meminfo", meminfo, sizeof meminfo - 1);
        uint64_t mem_kb = 0, swap_kb = 0;
        if (m > 0) {
            std::string_view mv(meminfo, static_cast<size_t>(m));
            if (kb_field(mv, "MemTotal", mem_kb)) {
                (void)kb_field(mv, "SwapTotal", swap_kb);
                total_pages = (mem_kb + swap_kb) * 1024 / page_size;
            }
        }
        char status[4096];
        for (TaskScore& t : tasks_) {
            if (t.oom_score != top) continue;
            std::snprintf(path, sizeof path, "%d/oom_score_adj", t.pid);
            ssize_t a = read_at(procfd, path, buf, sizeof buf);
            int adj = 0;
            std::snprintf(path, sizeof path, "%d/status", t.pid);
            ssize_t s = read_at(procfd, path, status, sizeof status);
            if (a > 0 && to_int(std::string_view(buf, static_cast<size_t>(a)), adj) && s > 0 &&
                total_pages > 0) {
                auto b = badness_from_status(std::string_view(status, static_cast<size_t>(s)), adj,
                                             total_pages, page_size);
                if (b) t.badness = *b;
            }
            std::snprintf(path, sizeof path, "%d/stat", t.pid);
            s = read_at(procfd, path, status, sizeof status);
            if (s > 0) {
                auto st = parse_stat_starttime(std::string_view(status, static_cast<size_t>(s)));
                if (st) t.start_ticks = *st;
            }
        }
    }

    PredictedVictim v;
    if (const TaskScore* best = pick_victim(tasks_)) {
        v.pid = best->pid;
        v.oom_score = best->oom_score;
        v.tied = at_top > 1;
        std::snprintf(path, sizeof path, "%d/comm", best->pid);
        ssize_t n = read_at(procfd, path, buf, sizeof buf);
        if (n > 0) v.comm = std::string(trim(std::string_view(buf, static_cast<size_t>(n))));
        std::string cg(4096, '\0');
        std::snprintf(path, sizeof path, "%d/cgroup", best->pid);
        n = read_at(procfd, path, cg.data(), cg.size());
        if (n > 0) {
            auto c = parse_proc_cgroup(std::string_view(cg.data(), static_cast<size_t>(n)));
            if (c) v.cgroup = std::move(*c);
        }
    }
    close(procfd);
    stats_.took = clock_.now() - start;
    return v;
}

}  // namespace oomguard
