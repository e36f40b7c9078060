// The kernel's OOM reports: record and line parsers (lines captured from real
// kernels), the assembler that pairs them, and the non-blocking reader.
#include "cgroup/kmsg.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/stat.h>

#include <random>

#include "fixture.hpp"

using namespace oomguard;
using namespace oomguard::test;

namespace {
// Captured on this machine (6.x, cgroup v1), and from a node-wide OOM on 5.15.
const char* kMemcgOomKill =
    "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/"
    "oomguard-probe-3107,"
    "task_memcg=/oomguard-probe-3107,task=python3,pid=4485,uid=0";
const char* kMemcgKilled =
    "Memory cgroup out of memory: Killed process 4485 (python3) total-vm:118968kB, "
    "anon-rss:20224kB, "
    "file-rss:6484kB, shmem-rss:0kB, UID:0 pgtables:100kB oom_score_adj:0";
const char* kGlobalOomKill =
    "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,"
    "task_memcg=/kubepods/besteffort/pod1b4e28ba-2fa1-11d2-883f-0016d3cca427/"
    "4c01db0b339c4f3a8e2d0a0b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f,task=stress,pid=31337,uid="
    "1000";
const char* kGlobalKilled =
    "Out of memory: Killed process 31337 (stress) total-vm:2105724kB, anon-rss:2097232kB, "
    "file-rss:1024kB, "
    "shmem-rss:0kB, UID:1000 pgtables:4156kB oom_score_adj:1000";

KmsgRecord rec(const std::string& text) {
    KmsgRecord r;
    EXPECT_TRUE(parse_kmsg_record(text, r));
    return r;
}
}  // namespace

TEST(KmsgRecord, PrefixContinuationAndBareLines) {
    KmsgRecord r;
    std::string raw = "6,1234,346705442,-;hello world\n SUBSYSTEM=memory\n DEVICE=x\n";
    ASSERT_TRUE(parse_kmsg_record(raw, r));
    EXPECT_EQ(r.level, 6);
    EXPECT_EQ(r.seq, 1234u);
    EXPECT_EQ(r.ts_usec, 346705442u);
    EXPECT_EQ(r.message, "hello world");
    ASSERT_TRUE(parse_kmsg_record("12,5,6,c;facility 1 level 4", r));
    EXPECT_EQ(r.level, 4);
    ASSERT_TRUE(parse_kmsg_record("plain message; with semicolon", r));
    EXPECT_EQ(r.level, -1);
    EXPECT_EQ(r.message, "plain message; with semicolon");
    EXPECT_FALSE(parse_kmsg_record("", r));
    EXPECT_FALSE(parse_kmsg_record("\n", r));
}

TEST(OomKillLine, MemcgAndGlobal) {
    OomKillLine l;
    ASSERT_TRUE(parse_oom_kill_line(kMemcgOomKill, l));
    EXPECT_EQ(l.constraint, "CONSTRAINT_MEMCG");
    EXPECT_EQ(l.oom_memcg, "/oomguard-probe-3107");
    EXPECT_EQ(l.task_memcg, "/oomguard-probe-3107");
    EXPECT_EQ(l.task, "python3");
    EXPECT_EQ(l.pid, 4485);
    EXPECT_EQ(l.uid, 0);
    EXPECT_FALSE(l.global_oom);

    ASSERT_TRUE(parse_oom_kill_line(kGlobalOomKill, l));
    EXPECT_EQ(l.constraint, "CONSTRAINT_NONE");
    EXPECT_TRUE(l.global_oom);
    EXPECT_EQ(l.oom_memcg, "");
    EXPECT_EQ(l.task, "stress");
    EXPECT_EQ(l.pid, 31337);
    EXPECT_EQ(l.uid, 1000);
    EXPECT_NE(l.task_memcg.find("/kubepods/besteffort/pod1b4e28ba"), std::string_view::npos);
}

TEST(OomKillLine, CommasInPathsAndNames) {
    OomKillLine l;
    ASSERT_TRUE(parse_oom_kill_line(
        "oom-kill:constraint=CONSTRAINT_NONE,nodemask=0-1,cpuset=/,mems_allowed=0,2,global_oom,"
        "task_memcg=/a,b/c,task=x,y,pid=7,uid=0",
        l));
    EXPECT_EQ(l.task_memcg, "/a,b/c");
    EXPECT_EQ(l.task, "x,y");
    EXPECT_EQ(l.pid, 7);
    for (const char* bad :
         {"oom-kill:", "oom-kill:constraint=CONSTRAINT_NONE", "oom-kill:task=x,pid=1",
          "oom-kill:task_memcg=/,task=x,pid=abc", "no oom here"})
        EXPECT_FALSE(parse_oom_kill_line(bad, l)) << bad;
}

TEST(KilledProcessLine, BothVariants) {
    KilledProcessLine k;
    ASSERT_TRUE(parse_killed_process_line(kMemcgKilled, k));
    EXPECT_TRUE(k.memcg);
    EXPECT_EQ(k.pid, 4485);
    EXPECT_EQ(k.task, "python3");
    EXPECT_EQ(k.total_vm_kb, 118968u);
    EXPECT_EQ(k.anon_rss_kb, 20224u);
    EXPECT_EQ(k.file_rss_kb, 6484u);
    EXPECT_EQ(k.shmem_rss_kb, 0u);
    ASSERT_TRUE(parse_killed_process_line(kGlobalKilled, k));
    EXPECT_FALSE(k.memcg);
    EXPECT_EQ(k.anon_rss_kb, 2097232u);
    // A comm with parentheses.
    ASSERT_TRUE(
        parse_killed_process_line("Out of memory: Killed process 9 ((sd-pam)) total-vm:1kB, "
                                  "anon-rss:2kB, file-rss:3kB, shmem-rss:4kB",
                                  k));
    EXPECT_EQ(k.task, "(sd-pam)");
    EXPECT_EQ(k.shmem_rss_kb, 4u);
    EXPECT_FALSE(parse_killed_process_line("Killed process abc (x)", k));
    EXPECT_FALSE(parse_killed_process_line("Killed process 12", k));
}

TEST(OtherLines, GroupIgnoredManual) {
    std::string_view memcg;
    ASSERT_TRUE(parse_oom_group_line(
        "Tasks in /kubepods/pod1/abc are going to be killed due to memory.oom.group set", memcg));
    EXPECT_EQ(memcg, "/kubepods/pod1/abc");
    EXPECT_FALSE(parse_oom_group_line("Tasks in /x are fine", memcg));
    EXPECT_TRUE(is_oom_request_ignored("OOM request ignored. No task eligible"));
    EXPECT_TRUE(is_sysrq_manual_oom("sysrq: Manual OOM execution"));
    EXPECT_FALSE(is_oom_request_ignored("sysrq: Manual OOM execution"));
}

TEST(OomAssembler, PairsOomKillWithKilledProcess) {
    OomReportAssembler a;
    std::vector<KernelOomEvent> out;
    a.feed(rec(std::string("6,1,100,-;") + kMemcgOomKill), out);
    EXPECT_TRUE(out.empty());
    EXPECT_TRUE(a.pending());
    a.feed(rec("6,2,101,-;some unrelated line"), out);
    a.feed(rec(std::string("3,3,102,-;") + kMemcgKilled), out);
    ASSERT_EQ(out.size(), 1u);
    const auto& e = out[0];
    EXPECT_EQ(e.type, KernelOomEvent::Type::Kill);
    EXPECT_TRUE(e.memcg_oom);
    EXPECT_EQ(e.pid, 4485);
    EXPECT_EQ(e.task, "python3");
    EXPECT_EQ(e.task_memcg, "/oomguard-probe-3107");
    EXPECT_EQ(e.oom_memcg, "/oomguard-probe-3107");
    EXPECT_EQ(e.ts_usec, 100u);
    EXPECT_TRUE(e.have_rss);
    EXPECT_EQ(e.rss_bytes, (20224u + 6484u) * 1024u);
    EXPECT_FALSE(a.pending());

    out.clear();
    a.feed(rec(kGlobalOomKill), out);
    a.feed(rec(kGlobalKilled), out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FALSE(out[0].memcg_oom);
    EXPECT_EQ(out[0].constraint, "CONSTRAINT_NONE");
}

TEST(KmsgParse, ExitingVictimLine) {
    int64_t pid = -1;
    std::string_view task;
    ASSERT_TRUE(parse_exiting_victim_line(
        "Out of memory: OOM victim 503 (sleep) is already exiting. Skip", pid, task));
    EXPECT_EQ(pid, 503);
    EXPECT_EQ(task, "sleep");
    ASSERT_TRUE(parse_exiting_victim_line(
        "Memory cgroup out of memory: OOM victim 7 (a) b) is already exiting. Skip", pid, task));
    EXPECT_EQ(pid, 7);
    EXPECT_EQ(task, "a) b");
    EXPECT_FALSE(parse_exiting_victim_line(
        "Out of memory: OOM victim x (a) is already exiting. Skip", pid, task));
    EXPECT_FALSE(
        parse_exiting_victim_line("Out of memory: OOM victim 5 (a) is exiting", pid, task));
    EXPECT_FALSE(parse_exiting_victim_line("OOM victim 5", pid, task));
}

TEST(OomAssembler, GroupTaskThatWasExitingAlreadyIsAGroupMember) {
    OomReportAssembler a;
    std::vector<KernelOomEvent> out;
    // Outside a memory.oom.group kill the line is no kill of its own.
    a.feed(rec("Out of memory: OOM victim 9 (x) is already exiting. Skip"), out);
    EXPECT_TRUE(out.empty());
    a.feed(rec(kGlobalOomKill), out);
    a.feed(rec("Tasks in /k/p/c are going to be killed due to memory.oom.group set"), out);
    a.feed(rec("Out of memory: OOM victim 12 (c) is already exiting. Skip"), out);
    ASSERT_EQ(out.size(), 2u);  // the pending oom-kill line, then the member
    EXPECT_EQ(out[1].type, KernelOomEvent::Type::Kill);
    EXPECT_EQ(out[1].pid, 12);
    EXPECT_EQ(out[1].task, "c");
    EXPECT_EQ(out[1].task_memcg, "/k/p/c");
    EXPECT_TRUE(out[1].group_member);
    EXPECT_FALSE(out[1].have_rss);
}

TEST(OomAssembler, OomGroupKillsAndLoneLines) {
    OomReportAssembler a;
    std::vector<KernelOomEvent> out;
    a.feed(rec("oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/"
               ",mems_allowed=0,oom_memcg=/k/p,"
               "task_memcg=/k/p/c,task=a,pid=10,uid=0"),
           out);
    a.feed(rec("Tasks in /k/p/c are going to be killed due to memory.oom.group set"), out);
    a.feed(rec("Memory cgroup out of memory: Killed process 10 (a) total-vm:1kB, anon-rss:1kB, "
               "file-rss:0kB, "
               "shmem-rss:0kB"),
           out);
    a.feed(rec("Memory cgroup out of memory: Killed process 11 (b) total-vm:1kB, anon-rss:2kB, "
               "file-rss:0kB, "
               "shmem-rss:0kB"),
           out);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[1].pid, 11);
    EXPECT_EQ(out[1].task_memcg, "/k/p/c");  // from the oom.group line
    EXPECT_EQ(out[1].constraint, "CONSTRAINT_MEMCG");
    EXPECT_TRUE(out[1].memcg_oom);

    // An oom-kill line whose Killed line never came is flushed.
    out.clear();
    a.feed(rec(kGlobalOomKill), out);
    EXPECT_TRUE(out.empty());
    a.flush(out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].pid, 31337);
    EXPECT_FALSE(out[0].have_rss);

    // A Killed line alone (old kernels).
    out.clear();
    OomReportAssembler b;
    b.feed(rec(kGlobalKilled), out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].task_memcg, "");
    EXPECT_EQ(out[0].constraint, "");

    out.clear();
    b.feed(rec("6,9,500,-;sysrq: Manual OOM execution"), out);
    b.feed(rec("6,10,501,-;OOM request ignored. No task eligible"), out);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].type, KernelOomEvent::Type::ManualOom);
    EXPECT_EQ(out[1].type, KernelOomEvent::Type::RequestIgnored);
    EXPECT_EQ(out[1].ts_usec, 501u);
}

// Found with fuzz_kmsg's rss >= anon invariant: huge kB values wrapped, so the total RSS came out
// below the anon RSS (here 0). They saturate now.
TEST(OomAssembler, HugeRssSaturatesInsteadOfWrapping) {
    OomReportAssembler a;
    std::vector<KernelOomEvent> out;
    a.feed(rec("Killed process 5 (x) total-vm:1kB, anon-rss:18014398509481983kB, "
               "file-rss:1kB, shmem-rss:0kB"),
           out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].anon_rss_bytes, 18014398509481983ull * 1024);
    EXPECT_EQ(out[0].rss_bytes, UINT64_MAX);
    EXPECT_GE(out[0].rss_bytes, out[0].anon_rss_bytes);
}

TEST(OomAssembler, RandomInputNeverCrashes) {
    std::mt19937 rng(99);
    const std::vector<std::string> pieces = {"oom-kill:",
                                             "constraint=",
                                             "CONSTRAINT_MEMCG",
                                             ",task_memcg=",
                                             ",task=",
                                             ",pid=",
                                             ",uid=",
                                             "Killed process ",
                                             " (",
                                             ") total-vm:",
                                             "kB, anon-rss:",
                                             "Tasks in ",
                                             " are going to be killed due to memory.oom.group set",
                                             "OOM request ignored",
                                             "123",
                                             "/kubepods/",
                                             ",",
                                             ";",
                                             "6,1,2,-;",
                                             "\n"};
    OomReportAssembler a;
    std::vector<KernelOomEvent> out;
    for (int i = 0; i < 20000; ++i) {
        std::string s;
        int n = static_cast<int>(rng() % 12);
        for (int j = 0; j < n; ++j)
            s += rng() % 10 ? pieces[rng() % pieces.size()] : std::string(1, char(rng() % 256));
        KmsgRecord r;
        if (parse_kmsg_record(s, r)) a.feed(r, out);
        if (out.size() > 1000) out.clear();
    }
    a.flush(out);
    SUCCEED();
}

TEST(KmsgReader, TailsARegularFileFromItsEnd) {
    TempDir t;
    const std::string path = t / "kmsg";
    makeFile(path, std::string("6,1,1,-;") + kGlobalKilled + "\n");  // before open: not reported
    KmsgReader r;
    ASSERT_TRUE(r.open(path));
    EXPECT_EQ(r.poll_fd(), -1);  // a file is read on a timer, not polled
    std::vector<std::string> got;
    auto sink = [&](const KmsgRecord& k) { got.emplace_back(k.message); };
    EXPECT_EQ(r.read_available(sink).value(), 0u);
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND);
    std::string more = std::string("6,2,2,-;") + kMemcgOomKill + "\n SUBSYSTEM=x\n6,3,3,-;partial";
    ASSERT_EQ(::write(fd, more.data(), more.size()), static_cast<ssize_t>(more.size()));
    EXPECT_EQ(r.read_available(sink).value(), 1u);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0], kMemcgOomKill);
    ASSERT_EQ(::write(fd, " line\n", 6), 6);  // completes the partial record
    EXPECT_EQ(r.read_available(sink).value(), 1u);
    EXPECT_EQ(got.back(), "partial line");
    ::close(fd);
}

TEST(KmsgReader, FifoSurvivesItsWriterGoingAway) {
    TempDir t;
    const std::string path = t / "kmsg.fifo";
    ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
    KmsgReader r;
    ASSERT_TRUE(r.open(path));
    EXPECT_GE(r.poll_fd(), 0);
    std::vector<std::string> got;
    auto sink = [&](const KmsgRecord& k) { got.emplace_back(k.message); };
    for (int round = 0; round < 2; ++round) {
        int w = ::open(path.c_str(), O_WRONLY | O_NONBLOCK);
        ASSERT_GE(w, 0);
        std::string line = "6,1,1,-;OOM request ignored. No task eligible\n";
        ASSERT_EQ(::write(w, line.data(), line.size()), static_cast<ssize_t>(line.size()));
        ::close(w);
        ASSERT_TRUE(r.read_available(sink));
        ASSERT_EQ(got.size(), static_cast<size_t>(round + 1));
        // After EOF the reader reopened the FIFO: no POLLHUP storm.
        pollfd p{r.poll_fd(), POLLIN, 0};
        EXPECT_EQ(::poll(&p, 1, 0), 0) << "revents " << p.revents;
    }
}

TEST(KmsgReader, DevKmsgStartsAtTheEnd) {
    KmsgReader r;
    Status st = r.open("/dev/kmsg");
    if (!st) GTEST_SKIP() << "cannot read /dev/kmsg here: " << st.error().message;
    // Everything logged before open is skipped: nothing to read right away
    // (unless the kernel logs something in between; then it is new).
    auto n = r.read_available([](const KmsgRecord& k) { EXPECT_GE(k.level, 0); });
    ASSERT_TRUE(n) << n.error().message;
    EXPECT_LT(*n, 5u);
    EXPECT_FALSE(r.open("/nonexistent/kmsg"));
}

TEST(KmsgReader, AFloodIsReadInBoundedRounds) {
    TempDir t;
    const std::string path = t / "kmsg";
    makeFile(path, "");
    KmsgReader r;
    ASSERT_TRUE(r.open(path));
    std::string flood;
    const size_t total = 3 * KmsgReader::kMaxRecordsPerRead + 7;
    for (size_t i = 0; i < total; ++i)
        flood += "6," + std::to_string(i) + ",1,-;OOM request ignored. No task eligible\n";
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND);
    ASSERT_EQ(::write(fd, flood.data(), flood.size()), static_cast<ssize_t>(flood.size()));
    ::close(fd);
    size_t got = 0, rounds = 0;
    auto sink = [&](const KmsgRecord&) { ++got; };
    do {
        EXPECT_LE(r.read_available(sink).value(), KmsgReader::kMaxRecordsPerRead);
        ++rounds;
    } while (r.more() && rounds < 100);
    EXPECT_EQ(got, total);
    EXPECT_EQ(rounds, 4u);
    EXPECT_TRUE(r.is_open());
}

TEST(KmsgReader, ClosesOnACharacterDeviceThatIsNotKmsg) {
    for (const char* dev : {"/dev/null", "/dev/zero"}) {
        KmsgReader r;
        ASSERT_TRUE(r.open(dev)) << dev;
        size_t n = 0;
        auto got = r.read_available([&](const KmsgRecord&) { ++n; });
        EXPECT_EQ(n, 0u) << dev;
        EXPECT_FALSE(r.is_open()) << dev << " is still read (polled readable forever)";
        ASSERT_FALSE(got) << dev << ": the read that closed it says why";
        EXPECT_NE(got.error().message.find(dev), std::string::npos) << got.error().message;
        EXPECT_FALSE(r.more());
    }
}
