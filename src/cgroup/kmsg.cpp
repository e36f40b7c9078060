#include "cgroup/kmsg.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace oomguard {
namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// Digits at the start of s; false when none (or overflow).
bool leading_u64(std::string_view s, uint64_t& v, size_t* used = nullptr) {
    size_t i = 0;
    v = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        uint64_t d = static_cast<uint64_t>(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
        ++i;
    }
    if (used) *used = i;
    return i > 0;
}

bool leading_i64(std::string_view s, int64_t& v) {
    bool neg = !s.empty() && s[0] == '-';
    uint64_t u;
    if (!leading_u64(s.substr(neg ? 1 : 0), u) || u > static_cast<uint64_t>(INT64_MAX))
        return false;
    v = neg ? -static_cast<int64_t>(u) : static_cast<int64_t>(u);
    return true;
}

// "key:123kB" somewhere after `from` -> 123.
bool kb_field(std::string_view s, std::string_view key, uint64_t& v) {
    size_t p = s.find(key);
    if (p == std::string_view::npos) return false;
    return leading_u64(s.substr(p + key.size()), v);
}

// kB -> bytes, saturating: a corrupt line must not wrap to a small number.
uint64_t kb_to_bytes(uint64_t kb) { return kb > UINT64_MAX / 1024 ? UINT64_MAX : kb * 1024; }

uint64_t saturating_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

}  // namespace

bool parse_kmsg_record(std::string_view raw, KmsgRecord& out) {
    out = KmsgRecord{};
    size_t nl = raw.find('\n');
    std::string_view line = raw.substr(0, nl);
    while (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) return false;
    size_t semi = line.find(';');
    if (semi != std::string_view::npos) {
        // "pri,seq,ts_usec,flags[,...]"
        std::string_view prefix = line.substr(0, semi);
        uint64_t pri = 0, seq = 0, ts = 0;
        size_t u1 = 0, u2 = 0, u3 = 0;
        if (leading_u64(prefix, pri, &u1) && u1 < prefix.size() && prefix[u1] == ',' &&
            leading_u64(prefix.substr(u1 + 1), seq, &u2) && u1 + 1 + u2 < prefix.size() &&
            prefix[u1 + 1 + u2] == ',' && leading_u64(prefix.substr(u1 + u2 + 2), ts, &u3)) {
            out.level = static_cast<int>(pri & 7);
            out.seq = seq;
            out.ts_usec = ts;
            out.message = line.substr(semi + 1);
            return true;
        }
    }
    out.message = line;
    return true;
}

bool parse_oom_kill_line(std::string_view msg, OomKillLine& out) {
    out = OomKillLine{};
    static constexpr std::string_view kHead = "oom-kill:";
    size_t h = msg.find(kHead);
    if (h == std::string_view::npos) return false;
    std::string_view body = msg.substr(h + kHead.size());
    // The order is fixed; paths and comm may contain commas, so find each key
    // from the right and cut values at the next key.
    size_t pid = body.rfind(",pid=");
    if (pid == std::string_view::npos) return false;
    size_t task = body.rfind(",task=", pid);
    size_t memcg =
        task == std::string_view::npos ? std::string_view::npos : body.rfind(",task_memcg=", task);
    if (task == std::string_view::npos || memcg == std::string_view::npos) return false;
    if (!leading_i64(body.substr(pid + 5), out.pid)) return false;
    size_t uid = body.find(",uid=", pid);
    if (uid != std::string_view::npos) leading_i64(body.substr(uid + 5), out.uid);
    out.task = body.substr(task + 6, pid - task - 6);
    out.task_memcg = body.substr(memcg + 12, task - memcg - 12);
    if (starts_with(body, "constraint=")) {
        size_t end = body.find(',');
        out.constraint = body.substr(11, (end == std::string_view::npos ? body.size() : end) - 11);
    }
    std::string_view head = body.substr(0, memcg + 1);  // up to task_memcg, with its comma
    size_t oom = head.find(",oom_memcg=");
    if (oom != std::string_view::npos) out.oom_memcg = body.substr(oom + 11, memcg - oom - 11);
    out.global_oom = head.find(",global_oom,") != std::string_view::npos;
    return true;
}

bool parse_killed_process_line(std::string_view msg, KilledProcessLine& out) {
    out = KilledProcessLine{};
    static constexpr std::string_view kKilled = "Killed process ";
    size_t k = msg.find(kKilled);
    if (k == std::string_view::npos) return false;
    out.memcg = msg.substr(0, k).find("Memory cgroup") != std::string_view::npos;
    std::string_view rest = msg.substr(k + kKilled.size());
    size_t used = 0;
    uint64_t pid = 0;
    if (!leading_u64(rest, pid, &used) || pid > static_cast<uint64_t>(INT64_MAX)) return false;
    out.pid = static_cast<int64_t>(pid);
    rest = rest.substr(used);
    if (!starts_with(rest, " (")) return false;
    // comm may contain ')': the name ends at the last ") " before total-vm.
    size_t end = rest.find(") total-vm:");
    if (end == std::string_view::npos) end = rest.rfind(')');
    if (end == std::string_view::npos || end < 2) return false;
    out.task = rest.substr(2, end - 2);
    std::string_view tail = rest.substr(end);
    kb_field(tail, "total-vm:", out.total_vm_kb);
    kb_field(tail, "anon-rss:", out.anon_rss_kb);
    kb_field(tail, "file-rss:", out.file_rss_kb);
    kb_field(tail, "shmem-rss:", out.shmem_rss_kb);
    return true;
}

bool parse_exiting_victim_line(std::string_view msg, int64_t& pid, std::string_view& task) {
    static constexpr std::string_view kHead = "OOM victim ";
    static constexpr std::string_view kTail = ") is already exiting. Skip";
    size_t h = msg.find(kHead);
    if (h == std::string_view::npos) return false;
    std::string_view rest = msg.substr(h + kHead.size());
    size_t used = 0;
    uint64_t p = 0;
    if (!leading_u64(rest, p, &used) || p > static_cast<uint64_t>(INT64_MAX)) return false;
    rest = rest.substr(used);
    // comm may contain ')': the name ends at the tail.
    size_t end = rest.rfind(kTail);
    if (!starts_with(rest, " (") || end == std::string_view::npos || end < 2) return false;
    pid = static_cast<int64_t>(p);
    task = rest.substr(2, end - 2);
    return true;
}

bool parse_oom_group_line(std::string_view msg, std::string_view& memcg) {
    static constexpr std::string_view kHead = "Tasks in ";
    static constexpr std::string_view kTail = " are going to be killed due to memory.oom.group set";
    size_t h = msg.find(kHead);
    if (h == std::string_view::npos) return false;
    size_t t = msg.find(kTail, h);
    if (t == std::string_view::npos) return false;
    memcg = msg.substr(h + kHead.size(), t - h - kHead.size());
    return true;
}

bool is_oom_request_ignored(std::string_view msg) {
    return msg.find("OOM request ignored") != std::string_view::npos;
}

bool is_sysrq_manual_oom(std::string_view msg) {
    return msg.find("Manual OOM execution") != std::string_view::npos;
}

void OomReportAssembler::flush(std::vector<KernelOomEvent>& out) {
    if (!pending_) return;
    out.push_back(std::move(pend_));
    pend_ = KernelOomEvent{};
    pending_ = false;
}

void OomReportAssembler::feed(const KmsgRecord& r, std::vector<KernelOomEvent>& out) {
    const std::string_view m = r.message;
    OomKillLine ok;
    KilledProcessLine kp;
    std::string_view group, exiting_task;
    int64_t exiting_pid = -1;
    if (parse_oom_kill_line(m, ok)) {
        flush(out);
        pend_ = KernelOomEvent{};
        pend_.type = KernelOomEvent::Type::Kill;
        pend_.ts_usec = r.ts_usec;
        pend_.pid = ok.pid;
        pend_.uid = ok.uid;
        pend_.task = std::string(ok.task);
        pend_.constraint = std::string(ok.constraint);
        pend_.task_memcg = std::string(ok.task_memcg);
        pend_.oom_memcg = std::string(ok.oom_memcg);
        pend_.memcg_oom = ok.constraint == "CONSTRAINT_MEMCG";
        pending_ = true;
        group_memcg_.clear();
        group_constraint_ = pend_.constraint;
    } else if (parse_killed_process_line(m, kp)) {
        KernelOomEvent e;
        if (pending_ && pend_.pid == kp.pid) {
            e = std::move(pend_);
            pend_ = KernelOomEvent{};
            pending_ = false;
        } else {
            flush(out);
            // A further kill of a memory.oom.group, or a kernel without oom-kill lines.
            e.type = KernelOomEvent::Type::Kill;
            e.ts_usec = r.ts_usec;
            e.pid = kp.pid;
            e.task = std::string(kp.task);
            e.task_memcg = group_memcg_;
            e.constraint = group_memcg_.empty() ? "" : group_constraint_;
            e.memcg_oom = kp.memcg || e.constraint == "CONSTRAINT_MEMCG";
            e.group_member = !group_memcg_.empty();
        }
        if (kp.memcg) e.memcg_oom = true;
        e.have_rss = true;
        e.anon_rss_bytes = kb_to_bytes(kp.anon_rss_kb);
        e.rss_bytes = kb_to_bytes(
            saturating_add(saturating_add(kp.anon_rss_kb, kp.file_rss_kb), kp.shmem_rss_kb));
        out.push_back(std::move(e));
    } else if (parse_oom_group_line(m, group)) {
        group_memcg_ = std::string(group);
    } else if (!group_memcg_.empty() && parse_exiting_victim_line(m, exiting_pid, exiting_task)) {
        // A task of the memory.oom.group that was dying already: it goes with
        // the group (counted in its tasks), with no RSS of its own to add.
        flush(out);
        KernelOomEvent e;
        e.type = KernelOomEvent::Type::Kill;
        e.ts_usec = r.ts_usec;
        e.pid = exiting_pid;
        e.task = std::string(exiting_task);
        e.task_memcg = group_memcg_;
        e.constraint = group_constraint_;
        e.memcg_oom = e.constraint == "CONSTRAINT_MEMCG";
        e.group_member = true;
        out.push_back(std::move(e));
    } else if (is_oom_request_ignored(m)) {
        flush(out);
        KernelOomEvent e;
        e.type = KernelOomEvent::Type::RequestIgnored;
        e.ts_usec = r.ts_usec;
        out.push_back(std::move(e));
    } else if (is_sysrq_manual_oom(m)) {
        flush(out);
        group_memcg_.clear();
        KernelOomEvent e;
        e.type = KernelOomEvent::Type::ManualOom;
        e.ts_usec = r.ts_usec;
        out.push_back(std::move(e));
    }
}

KmsgReader::~KmsgReader() { close(); }

void KmsgReader::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    buf_.clear();
    buf_pos_ = 0;
}

Status KmsgReader::open(const std::string& path) {
    close();
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return Error::sys(errno, "kmsg " + path);
    if (S_ISCHR(st.st_mode))
        kind_ = Kind::CharDev;
    else if (S_ISFIFO(st.st_mode))
        kind_ = Kind::Fifo;
    else if (S_ISREG(st.st_mode))
        kind_ = Kind::File;
    else
        return Error::logic("kmsg " + path + ": not a character device, FIFO or file");
    int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return Error::sys(errno, "cannot open kmsg " + path);
    // Only what happens from now on: the past was reported by whoever ran then.
    if (kind_ != Kind::Fifo && ::lseek(fd, 0, SEEK_END) < 0) {
        Error e = Error::sys(errno, "kmsg " + path + ": seek to end");
        ::close(fd);
        return e;
    }
    fd_ = fd;
    path_ = path;
    error_.reset();
    unparsed_run_ = 0;
    return ok_status();
}

void KmsgReader::fail(Error why) {
    close();
    error_ = std::move(why);
}

bool KmsgReader::next(std::string_view& rec) {
    if (fd_ < 0) return false;
    if (kind_ == Kind::CharDev) {
        for (;;) {
            ssize_t n = ::read(fd_, rec_, sizeof rec_);
            if (n > 0) {
                rec = std::string_view(rec_, static_cast<size_t>(n));
                return true;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EPIPE) {  // overwritten before we read it: go on with the next
                ++lost_;
                continue;
            }
            // A character device at its end is not /dev/kmsg (which says EAGAIN):
            // /dev/null would otherwise be polled readable forever.
            if (n == 0) fail(Error::logic(path_ + ": end of file: not the kernel log device"));
            return false;  // EAGAIN: nothing more now
        }
    }
    // FIFO or file: a stream of lines; " KEY=value" lines continue a record.
    for (;;) {
        while (buf_pos_ < buf_.size()) {
            size_t nl = buf_.find('\n', buf_pos_);
            if (nl == std::string::npos) break;
            std::string_view line(buf_.data() + buf_pos_, nl - buf_pos_);
            buf_pos_ = nl + 1;
            if (line.empty() || line[0] == ' ') continue;
            rec = line;
            return true;
        }
        buf_.erase(0, buf_pos_);
        buf_pos_ = 0;
        if (buf_.size() > (1u << 20)) buf_.clear();  // a line without end: drop it
        ssize_t n = ::read(fd_, rec_, sizeof rec_);
        if (n > 0) {
            buf_.append(rec_, static_cast<size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n == 0 && kind_ == Kind::Fifo) {
            // The writer went away: reopen, or poll() reports POLLHUP forever.
            int fd = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
            if (fd >= 0) {
                ::close(fd_);
                fd_ = fd;
            }
        }
        return false;
    }
}

}  // namespace oomguard
