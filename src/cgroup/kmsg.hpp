// The kernel's OOM reports from /dev/kmsg. The parsers are pure functions of
// the text (fuzzable, never throw); KmsgReader does the non-blocking I/O.
//
//   oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,
//            oom_memcg=/kubepods/...,task_memcg=/kubepods/.../<cid>,task=python3,pid=4485,uid=0
//   Memory cgroup out of memory: Killed process 4485 (python3) total-vm:118968kB,
//            anon-rss:20224kB, file-rss:6484kB, shmem-rss:0kB, UID:0 pgtables:100kB oom_score_adj:0
//   Out of memory: Killed process ...            (a global OOM, e.g. after sysrq 'f')
//   Tasks in /kubepods/... are going to be killed due to memory.oom.group set
//   OOM request ignored. No task eligible        (sysrq 'f' found nothing to kill)
//   sysrq: Manual OOM execution                  (the kernel took our 'f')
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace oomguard {

struct KmsgRecord {
    int level = -1;  // syslog level 0..7; -1 when the line had no kmsg prefix
    uint64_t seq = 0;
    uint64_t ts_usec = 0;  // CLOCK_MONOTONIC-like time since boot
    std::string_view message;
};
// "<prefix>;message[\n KEY=value...]". A line without the "pri,seq,ts,flags;"
// prefix is taken as a bare message (level -1). False only for empty input.
bool parse_kmsg_record(std::string_view raw, KmsgRecord& out);

struct OomKillLine {
    std::string_view constraint;  // CONSTRAINT_NONE, CONSTRAINT_MEMCG, ...
    std::string_view oom_memcg;   // the cgroup that hit its limit (memcg OOM only)
    std::string_view task_memcg;  // the victim's cgroup
    std::string_view task;
    int64_t pid = -1;
    int64_t uid = -1;
    bool global_oom = false;
};
bool parse_oom_kill_line(std::string_view msg, OomKillLine& out);

struct KilledProcessLine {
    bool memcg = false;  // "Memory cgroup out of memory: ..."
    int64_t pid = -1;
    std::string_view task;
    uint64_t total_vm_kb = 0, anon_rss_kb = 0, file_rss_kb = 0, shmem_rss_kb = 0;
};
bool parse_killed_process_line(std::string_view msg, KilledProcessLine& out);

// "Tasks in <memcg> are going to be killed due to memory.oom.group set"
bool parse_oom_group_line(std::string_view msg, std::string_view& memcg);
// "<reason>: OOM victim <pid> (<comm>) is already exiting. Skip": a task the
// kernel found dying already (no mm left). Within a memory.oom.group kill it
// is one of the group's tasks all the same: it dies, with no Killed line.
bool parse_exiting_victim_line(std::string_view msg, int64_t& pid, std::string_view& task);
bool is_oom_request_ignored(std::string_view msg);
bool is_sysrq_manual_oom(std::string_view msg);

// One thing the kernel did, assembled from the lines above.
struct KernelOomEvent {
    enum class Type { Kill, RequestIgnored, ManualOom };
    Type type = Type::Kill;
    uint64_t ts_usec = 0;
    // Kill:
    int64_t pid = -1;
    int64_t uid = -1;
    std::string task;
    std::string constraint;  // "" when the kernel printed no oom-kill line
    std::string task_memcg;
    std::string oom_memcg;
    bool memcg_oom = false;  // a cgroup hit its own limit (not a node-wide OOM)
    // A further kill of a memory.oom.group after its first victim (task_memcg is
    // then the group's cgroup). The kernel lists the first victim again among
    // them (kernel 6.1), or says it "is already exiting".
    bool group_member = false;
    bool have_rss = false;
    uint64_t rss_bytes = 0;  // anon + file + shmem RSS at the kill
    uint64_t anon_rss_bytes = 0;
};

// Pairs each oom-kill line with its "Killed process" line (by pid), and carries
// the memory.oom.group context to the group's further kills.
class OomReportAssembler {
public:
    void feed(const KmsgRecord& r, std::vector<KernelOomEvent>& out);
    // Emits an oom-kill line whose "Killed process" line never came.
    void flush(std::vector<KernelOomEvent>& out);
    bool pending() const { return pending_; }

private:
    bool pending_ = false;
    KernelOomEvent pend_;
    std::string group_memcg_;
    std::string group_constraint_;
};

// Non-blocking reader of kmsg records. /dev/kmsg (a character device: one record
// per read, starting at the end), a FIFO or a regular file (tests: lines in kmsg
// format; a file is tailed from its end).
class KmsgReader {
public:
    KmsgReader() = default;
    ~KmsgReader();
    KmsgReader(const KmsgReader&) = delete;
    KmsgReader& operator=(const KmsgReader&) = delete;

    Status open(const std::string& path);
    void close();
    bool is_open() const { return fd_ >= 0; }
    const std::string& path() const { return path_; }
    // The fd to poll for POLLIN, or -1 when it must be read on a timer (a regular file).
    int poll_fd() const { return kind_ == Kind::File ? -1 : fd_; }
    // Reads what is available now, at most kMaxRecordsPerRead records (a flood
    // of kernel messages must not hold the loop: more() says to come back at
    // once); calls sink(record) for each one that parses. Returns that count,
    // or, once the reader is closed, why: a source that is not kmsg (EOF from a
    // character device, like /dev/null; a run of records that do not parse,
    // like /dev/zero) is closed by the read that finds out.
    static constexpr size_t kMaxRecordsPerRead = 512;
    template <typename F>
    Result<size_t> read_available(F&& sink) {
        size_t n = 0, read = 0;
        more_ = false;
        std::string_view rec;
        while (next(rec)) {
            KmsgRecord r;
            // The kernel's device always gives the "pri,seq,ts;" prefix; files
            // and FIFOs in tests may hold bare lines.
            if (parse_kmsg_record(rec, r) && (r.level >= 0 || kind_ != Kind::CharDev)) {
                unparsed_run_ = 0;
                sink(r);
                ++n;
            } else if (++unparsed_run_ >= kMaxRecordsPerRead) {
                fail(Error::logic(path_ + ": " + std::to_string(unparsed_run_) +
                                  " records in a row are not in kmsg format"));
                break;
            }
            if (++read >= kMaxRecordsPerRead) {
                more_ = is_open();
                break;
            }
        }
        if (!is_open()) return error_ ? *error_ : Error::logic("kmsg reader not open");
        return n;
    }
    bool more() const { return more_; }
    // Records the kernel overwrote before we read them (EPIPE).
    uint64_t lost() const { return lost_; }

private:
    enum class Kind { CharDev, Fifo, File };
    int fd_ = -1;
    Kind kind_ = Kind::CharDev;
    std::string path_;
    uint64_t lost_ = 0;
    std::string buf_;  // FIFO/file: bytes not yet split into lines
    size_t buf_pos_ = 0;
    char rec_[8192];
    bool more_ = false;
    size_t unparsed_run_ = 0;
    std::optional<Error> error_;  // why the reader closed itself
    bool next(std::string_view& rec);
    void fail(Error why);
};

}  // namespace oomguard
