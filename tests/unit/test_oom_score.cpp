// The predicted victim: pure selection and parsers on the stack, the scanner on
// fixture /proc trees, and once against the real /proc with a child of ours
// that asks to be the kernel's first choice.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <poll.h>

#include "app/victim_prediction.hpp"
#include "sensors/oom_predictor.hpp"
#include "sensors/oom_score.hpp"
#include "support/files.hpp"
#include "support/state_host.hpp"

namespace fs = std::filesystem;
using namespace oomguard;

namespace {

struct ProcTree {
    oomguard::test::TempDir tmp;  // tests/support's
    fs::path root = tmp.path();
    void file(const std::string& rel, const std::string& text) {
        fs::create_directories((root / rel).parent_path());
        std::ofstream(root / rel) << text;
    }
    // A task with the files the scanner reads.
    void task(int pid, int64_t score, const std::string& comm, const std::string& cgroup,
              int adj = 0, uint64_t rss_kb = 1024, uint64_t start = 100) {
        std::string d = std::to_string(pid) + "/";
        file(d + "oom_score", std::to_string(score) + "\n");
        file(d + "oom_score_adj", std::to_string(adj) + "\n");
        file(d + "comm", comm + "\n");
        file(d + "cgroup", cgroup);
        file(d + "status", "Name:\t" + comm + "\nVmRSS:\t" + std::to_string(rss_kb) +
                               " kB\nVmSwap:\t0 kB\nVmPTE:\t40 kB\n");
        file(d + "stat", std::to_string(pid) + " (" + comm +
                             ") S 1 1 1 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 " +
                             std::to_string(start) + " 1000 10\n");
    }
};

const std::string kBestEffort =
    "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234.slice/"
    "cri-containerd-abc.scope\n";

// A clock that moves 1 ms each time it is read, so a budget runs out after a
// known number of readings.
class SteppingClock final : public Clock {
public:
    Duration now() const override { return t_ += std::chrono::milliseconds(1); }

private:
    mutable Duration t_{0};
};

}  // namespace

TEST(PickVictim, HighestScoreWins) {
    TaskScore t[] = {{10, 300, -1, 5}, {11, 900, -1, 1}, {12, 700, -1, 9}};
    ASSERT_NE(pick_victim(t), nullptr);
    EXPECT_EQ(pick_victim(t)->pid, 11);
}

TEST(PickVictim, ZeroScoresAreNeverKilledAndNoneGivesNull) {
    TaskScore t[] = {{1, 0, -1, 0}, {2, 0, -1, 0}};
    EXPECT_EQ(pick_victim(t), nullptr);
    EXPECT_EQ(pick_victim(std::span<const TaskScore>{}), nullptr);
}

TEST(PickVictim, TiesGoToTheHigherKernelPointsThenTheLaterStart) {
    TaskScore by_points[] = {{20, 500, 9000, 50}, {21, 500, 9100, 10}, {22, 499, 99999, 99}};
    EXPECT_EQ(pick_victim(by_points)->pid, 21);
    TaskScore by_start[] = {{30, 500, 9000, 70}, {31, 500, 9000, 80}, {32, 500, 9000, 60}};
    EXPECT_EQ(pick_victim(by_start)->pid, 31);
}

TEST(OomScoreParsers, Score) {
    EXPECT_EQ(*parse_oom_score("667\n"), 667);
    EXPECT_EQ(*parse_oom_score("0"), 0);
    EXPECT_FALSE(parse_oom_score("").ok());
    EXPECT_FALSE(parse_oom_score("-3\n").ok());
    EXPECT_FALSE(parse_oom_score("12a\n").ok());
}

TEST(OomScoreParsers, BadnessIsTheKernelsFormula) {
    // rss 400 MiB + swap 8 MiB + page tables 800 kB, adj 1000, RAM+swap 4 GiB in 4 KiB pages.
    auto b = badness_from_status(
        "Name:\thog\nVmRSS:\t  409600 kB\nVmSwap:\t8192 kB\nVmPTE:\t800 kB\n", 1000, 1048576, 4096);
    ASSERT_TRUE(b.ok()) << b.error().message;
    EXPECT_EQ(*b, 102400 + 2048 + 200 + 1000 * 1048);
    auto neg = badness_from_status("VmRSS:\t4096 kB\n", -997, 1048576, 4096);
    EXPECT_EQ(*neg, 1024 - 997 * 1048);
    EXPECT_FALSE(badness_from_status("Name:\tkworker/0:1\n", 0, 1048576, 4096).ok());
}

TEST(OomScoreParsers, StarttimeSurvivesSpacesAndParensInComm) {
    auto st = parse_stat_starttime(
        "4242 (a b) c) S 1 1 1 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 777 1000 10\n");
    ASSERT_TRUE(st.ok()) << st.error().message;
    EXPECT_EQ(*st, 777u);
    EXPECT_FALSE(parse_stat_starttime("4242 (x) S 1 2 3\n").ok());
    EXPECT_FALSE(parse_stat_starttime("no paren").ok());
}

TEST(OomScoreParsers, CgroupV2HybridAndV1) {
    EXPECT_EQ(*parse_proc_cgroup(kBestEffort),
              "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234.slice/"
              "cri-containerd-abc.scope");
    // Hybrid: memory on v1, the v2 line names the unified tree without memory.
    EXPECT_EQ(
        *parse_proc_cgroup(
            "12:memory:/kubepods/besteffort/podX/cid\n3:cpu,cpuacct:/kubepods\n0::/init.scope\n"),
        "/kubepods/besteffort/podX/cid");
    EXPECT_EQ(*parse_proc_cgroup("5:cpuset:/\n7:blkio,memory:/system.slice/x.service\n"),
              "/system.slice/x.service");
    EXPECT_FALSE(parse_proc_cgroup("garbage\n").ok());
    EXPECT_FALSE(parse_proc_cgroup("").ok());
}

TEST(OomScoreScanner, PicksTheKillableTaskWithTheHighestScore) {
    ProcTree p;
    p.task(1, 0, "systemd", "0::/init.scope\n");                             // init: unkillable
    p.task(2, 0, "kthreadd", "0::/\n");                                      // kernel thread
    p.task(400, 0, "kubelet", "0::/system.slice/kubelet.service\n", -1000);  // -1000
    p.task(500, 120, "containerd", "0::/system.slice/containerd.service\n", -999);
    p.task(900, 1100, "hog", kBestEffort, 1000);
    p.task(901, 680, "web", "0::/kubepods.slice/kubepods-pod9.slice/cri-containerd-def.scope\n",
           -997);
    p.file("self/oom_score", "5\n");  // not a pid directory
    p.file("meminfo", "MemTotal: 4194304 kB\n");
    fs::create_directories(p.root / "777");  // exited between readdir and open
    OomScoreScanner s(p.root.string());
    auto v = s.scan(std::chrono::seconds(1));
    ASSERT_TRUE(v.ok()) << v.error().message;
    EXPECT_EQ(v->pid, 900);
    EXPECT_EQ(v->comm, "hog");
    EXPECT_EQ(v->oom_score, 1100);
    EXPECT_FALSE(v->tied);
    EXPECT_EQ(v->cgroup, kBestEffort.substr(3, kBestEffort.size() - 4));
    EXPECT_EQ(s.stats().tasks, 7u);
    EXPECT_EQ(s.stats().killable, 3u);
    EXPECT_EQ(s.stats().vanished, 1u);
    EXPECT_FALSE(s.stats().deadline_hit);
}

TEST(OomScoreScanner, TiedScoresAreBrokenByTheKernelsPoints) {
    ProcTree p;
    p.file("meminfo", "MemTotal: 4194304 kB\nSwapTotal: 0 kB\n");
    p.task(300, 1000, "small", kBestEffort, 1000, 100 * 1024, 900);
    p.task(301, 1000, "big", kBestEffort, 1000, 120 * 1024, 100);
    p.task(302, 1000, "mid", kBestEffort, 1000, 110 * 1024, 950);
    OomScoreScanner s(p.root.string());
    auto v = s.scan(std::chrono::seconds(1));
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v->pid, 301);
    EXPECT_TRUE(v->tied);
}

TEST(OomScoreScanner, NoKillableTaskAndAMissingRoot) {
    ProcTree p;
    p.task(1, 0, "init", "0::/\n");
    OomScoreScanner s(p.root.string());
    auto v = s.scan(std::chrono::seconds(1));
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v->pid, 0);
    OomScoreScanner missing((p.root / "nope").string());
    auto e = missing.scan(std::chrono::seconds(1));
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.error().message.find("nope"), std::string::npos) << e.error().message;
}

TEST(OomScoreScanner, StopsAtItsBudget) {
    ProcTree p;
    for (int pid = 100; pid < 400; ++pid) p.file(std::to_string(pid) + "/oom_score", "10\n");
    SteppingClock clock;  // 1 ms per reading; the scan reads it every 64 tasks
    OomScoreScanner s(p.root.string(), clock);
    auto v = s.scan(std::chrono::milliseconds(3));
    ASSERT_TRUE(v.ok());
    EXPECT_TRUE(s.stats().deadline_hit);
    EXPECT_LT(s.stats().tasks, 300u);
    EXPECT_GE(s.stats().tasks, 64u);
}

// The real kernel: a child that sets oom_score_adj 1000 and touches 64 MiB is
// what the kernel publishes as its first choice, and the scanner says so.
TEST(OomScoreScanner, RealProcPredictsOurVolunteer) {
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        std::ofstream("/proc/self/oom_score_adj") << "1000";
        size_t size = 64u << 20;
        void* m = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) std::memset(m, 1, size);
        char c = 'r';
        (void)!write(ready[1], &c, 1);
        pause();
        _exit(0);
    }
    close(ready[1]);
    char c;
    ASSERT_EQ(read(ready[0], &c, 1), 1);
    close(ready[0]);
    OomScoreScanner s("/proc");
    auto v = s.scan(std::chrono::seconds(5));
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    ASSERT_TRUE(v.ok()) << v.error().message;
    EXPECT_EQ(v->pid, child) << "predicted " << v->pid << " (" << v->comm << ", oom_score "
                             << v->oom_score << ") over " << s.stats().killable
                             << " killable tasks";
    EXPECT_GT(s.stats().killable, 1u);
}

// The background predictor: scans only while active, publishes without the
// reader ever blocking, and stops scanning when told.
TEST(OomPredictor, ScansWhileActiveAndStopsWhenIdle) {
    ProcTree p;
    p.file("meminfo", "MemTotal: 4194304 kB\n");
    p.task(300, 400, "web", "0::/kubepods.slice/kubepods-pod9.slice/cri-containerd-def.scope\n");
    p.task(301, 900, "hog", kBestEffort, 1000);
    OomPredictor pred(p.root.string(), std::chrono::milliseconds(20), std::chrono::seconds(1));
    pred.start();
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    EXPECT_EQ(pred.scans(), 0u) << "scanned while inactive";
    EXPECT_FALSE(pred.try_latest().has_value());
    pred.set_active(true);
    auto first = pred.wait_newer(Duration{0}, std::chrono::seconds(5));
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->victim.pid, 301);
    EXPECT_EQ(first->victim.comm, "hog");
    // A change on disk shows up in a later scan.
    p.task(302, 1200, "leak", kBestEffort, 1000);
    auto later = pred.wait_newer(first->at, std::chrono::seconds(5));
    ASSERT_TRUE(later.has_value());
    auto newest = pred.wait_newer(later->at, std::chrono::seconds(5));
    ASSERT_TRUE(newest.has_value());
    EXPECT_EQ(newest->victim.pid, 302);
    pred.set_active(false);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a scan in flight may finish
    uint64_t n = pred.scans();
    std::this_thread::sleep_for(std::chrono::milliseconds(120));
    EXPECT_EQ(pred.scans(), n) << "kept scanning after set_active(false)";
    auto last = pred.try_latest();
    ASSERT_TRUE(last.has_value());
    EXPECT_EQ(last->victim.pid, 302);
    pred.stop();
}

// A scan that fails says why, in the prediction (not "no killable task").
TEST(OomPredictor, AFailedScanCarriesItsError) {
    ProcTree p;
    OomPredictor pred((p.root / "gone").string(), std::chrono::milliseconds(20),
                      std::chrono::seconds(1));
    pred.start();
    pred.set_active(true);
    auto r = pred.wait_newer(Duration{-1}, std::chrono::seconds(5));
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->victim.pid, 0);
    ASSERT_TRUE(r->error.has_value()) << "a failed scan looked like a node with no killable task";
    EXPECT_NE(r->error->message.find("gone"), std::string::npos) << r->error->message;
    pred.stop();
}

// The daemon's side logs a failing scan once (scans run every second), and
// again only when the error changes.
TEST(VictimPrediction, LogsAFailingScanOnce) {
    ProcTree p;
    test::StateHost host;
    host.c.paths.proc = (p.root / "gone").string();
    host.s.sample.mem_total = 4ull << 30;
    host.s.sample.mem_available = 100ull << 20;  // below the recovery level: scans run
    host.s.levels.min = 200ull << 20;
    host.s.levels.recover = 400ull << 20;
    CgroupMonitor monitor;
    VictimPrediction vp(host, monitor);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    // Three scans at least (one a second), each taken by the loop's dispatch.
    int taken = 0;
    while (std::chrono::steady_clock::now() < until && taken < 3) {
        pollfd fd{vp.poll_spec().fd, POLLIN, 0};
        if (::poll(&fd, 1, 100) > 0) {
            vp.dispatch(fd.revents);
            if (host.count(Event::SensorError) > 0) ++taken;
        }
    }
    ASSERT_EQ(host.count(Event::SensorError), 1u);
    for (const auto& e : host.entries) {
        if (e.event == Event::SensorError) {
            EXPECT_NE(e.message.find("victim prediction: "), std::string::npos) << e.message;
        }
    }
}
