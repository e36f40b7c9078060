// Crossing -> trigger write latency with a node that makes naming slow: 100k
// stale directories in /var/log/pods (160 ms to list) and pods whose log
// directory is missing, so every lookup wants a re-list. The write must not
// wait for any of it (issue 10, defect 10): the trigger comes first, naming
// comes from the ranking already held, and background listings run in small
// slices between samples. The daemon runs in this thread, wired as main.cpp
// wires it; a helper thread moves MemAvailable and times the write.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "app/wiring.hpp"
#include "cgroup/cgroup_heaviest_source.hpp"
#include "cgroup/cgroup_targeting.hpp"
#include "cgroup/oom_reporter.hpp"
#include "daemon.hpp"
#include "service/metrics.hpp"
#include "support/fake_proc.hpp"
#include "support/files.hpp"

namespace {

using namespace oomguard;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// tests/support's (tmpfs where there is one: 100k mkdirs on ext4 take half a minute).
using oomguard::test::FakeProc;
using oomguard::test::TempDir;

void put(const std::string& path, const std::string& text) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path) << text;
}

void set_meminfo(FakeProc& mem, uint64_t avail_mib) { mem.set_available(avail_mib << 20); }

// When the action happened, as the sinks hear of it (kill-cgroup in dry-run
// writes nothing to time).
struct TriggerClock : EventSink {
    std::atomic<int64_t> at_ns{0};
    void on_trigger(const DaemonState&, const TriggerReport&) override {
        at_ns = std::chrono::steady_clock::now().time_since_epoch().count();
    }
};

// Runs `crossings` threshold crossings against the daemon (mode "sysrq": time
// to the FIFO write; "kill-cgroup": dry-run, time to the action's report) and
// returns the latencies in ms.
#define REQUIRE(c)                      \
    if (!(c)) {                         \
        ADD_FAILURE() << "failed: " #c; \
        return {};                      \
    }

std::vector<double> run_crossings(const std::string& mode, int crossings) {
    TempDir dir;
    // 100k stale pod log directories (pods long gone, kubelet never cleaned up).
    const std::string pods_dir = dir.file("log/pods");
    fs::create_directories(pods_dir);
    fs::create_directories(dir.file("log/containers"));
    for (int i = 0; i < 100000; ++i) {
        char name[96];
        std::snprintf(name, sizeof name, "%s/stale_pod-%06d_%08x-0000-4000-8000-%012d",
                      pods_dir.c_str(), i, i, i);
        REQUIRE(::mkdir(name, 0755) == 0);
    }
    // Live pods without log directories: every lookup misses and wants a re-list.
    const std::string cg = dir.file("cgroup");
    put(cg + "/cgroup.controllers", "memory\n");
    for (int i = 1; i <= 20; ++i) {
        char uid[40], cid[72];
        std::snprintf(uid, sizeof uid, "%08d-0000-4000-8000-000000000000", i);
        std::snprintf(cid, sizeof cid, "%064d", i);
        const std::string pod = cg + "/kubepods/besteffort/pod" + uid;
        for (const std::string& d :
             {cg + "/kubepods", cg + "/kubepods/besteffort", pod, pod + "/" + cid}) {
            const uint64_t usage = static_cast<uint64_t>(i) << 24;
            put(d + "/memory.current", std::to_string(usage) + "\n");
            put(d + "/memory.max", "max\n");
            put(d + "/memory.stat", "anon " + std::to_string(usage) + "\ninactive_file 0\n");
            put(d + "/cgroup.procs", "");
        }
    }
    put(dir.file("kmsg"), "");
    FakeProc mem(dir.file("proc"), 16ull << 30);
    set_meminfo(mem, 800);  // between the threshold and the warning level
    const std::string fifo = dir.file("trigger");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    int rfd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    REQUIRE(rfd >= 0);
    // A writer of our own: without one, poll() reports POLLHUP after the
    // daemon's first open-write-close and every later wait returns at once.
    int keep = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    REQUIRE(keep >= 0);
    put(dir.file("oomguard.toml"),
        "[memory]\nmin_available = \"500MiB\"\nwarn_available = \"1GiB\"\n"
        "[action]\nmode = \"" +
            mode + "\"\nsysrq_trigger = \"" + fifo +
            "\"\nrepeat_after = \"1h\"\n"
            "[poll]\nmin_interval = \"1ms\"\nidle_interval = \"1ms\"\nmax_interval = \"1s\"\n"
            "fill_rate = \"1000GiB/s\"\n"
            "psi = false\n[paths]\nproc = \"" +
            dir.file("proc") + "\"\ncgroup = \"" + cg + "\"\nkmsg = \"" + dir.file("kmsg") +
            "\"\n[kubernetes]\nlog_heaviest = true\n"
            "pod_logs_dir = \"" +
            pods_dir + "\"\n");

    DaemonOptions opts;
    opts.config_path = dir.file("oomguard.toml");
    opts.log_target = LogTarget::Stderr;
    opts.mlock = false;
    opts.allow_insecure_config = true;
    opts.dry_run = mode != "sysrq";
    const bool by_sink = opts.dry_run;
    Daemon daemon(opts);
    REQUIRE(daemon.init());
    Components components(daemon);
    TriggerClock clock;
    daemon.add_sink(&clock);

    // How long one listing of the stale directories takes here, for the record.
    {
        const auto t0 = std::chrono::steady_clock::now();
        size_t n = 0;
        for (auto& e : fs::directory_iterator(pods_dir)) n += e.is_directory() ? 1 : 0;
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now() - t0)
                            .count();
        std::printf("[ info ] listing %zu pod log directories takes %lld us\n", n,
                    static_cast<long long>(us));
    }

    const int kCrossings = crossings;
    std::vector<double> latencies_ms;
    std::thread helper([&] {
        std::mt19937 rng(42);
        std::uniform_int_distribution<int> phase(200, 1300);
        std::this_thread::sleep_for(500ms);
        for (int i = 0; i < kCrossings; ++i) {
            set_meminfo(mem, 800);  // warning: background refresh every second
            // A pod comes and goes: the directory changed, names are re-listed.
            ::mkdir((pods_dir + "/default_new-" + std::to_string(i) + "_x-" + std::to_string(i))
                        .c_str(),
                    0755);
            std::this_thread::sleep_for(std::chrono::milliseconds(phase(rng)));
            const auto t0 = std::chrono::steady_clock::now();
            const int64_t before = clock.at_ns;
            set_meminfo(mem, 400);
            if (by_sink) {
                while (clock.at_ns == before && std::chrono::steady_clock::now() - t0 < 3s)
                    std::this_thread::sleep_for(100us);
                if (clock.at_ns == before) break;
                latencies_ms.push_back((clock.at_ns - t0.time_since_epoch().count()) / 1e6);
            } else {
                pollfd p{rfd, POLLIN, 0};
                int r = ::poll(&p, 1, 3000);
                const auto t1 = std::chrono::steady_clock::now();
                char b[16];
                if (r <= 0 || ::read(rfd, b, sizeof b) <= 0) break;
                latencies_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
            }
            set_meminfo(mem, 1200);              // recovered: the next crossing is a new episode
            std::this_thread::sleep_for(300ms);  // below the threshold it polls every 100 ms
        }
        ::kill(::getpid(), SIGTERM);
    });
    EXPECT_EQ(daemon.run(), 0);
    helper.join();
    std::printf("[ info ] %llu samples, %llu triggers, %llu episodes\n",
                static_cast<unsigned long long>(daemon.state().samples_total),
                static_cast<unsigned long long>(daemon.state().triggers_total),
                static_cast<unsigned long long>(daemon.state().episodes_total));
    ::close(rfd);
    ::close(keep);

    return latencies_ms;
}

void report(const char* what, std::vector<double> v) {
    std::sort(v.begin(), v.end());
    std::printf("[ info ] %s over %zu crossings: median %.2f ms, p90 %.2f ms, max %.2f ms\n", what,
                v.size(), v[v.size() / 2], v[v.size() * 9 / 10], v.back());
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

int crossings(int dflt) {
    const char* e = std::getenv("CROSSINGS");
    return e ? std::atoi(e) : dflt;
}

}  // namespace

TEST(TriggerLatency, HundredThousandStaleLogDirsDoNotDelayTheWrite) {
    const int n = crossings(20);
    std::vector<double> v = run_crossings("sysrq", n);
    ASSERT_EQ(v.size(), static_cast<size_t>(n)) << "a crossing got no trigger";
    report("sysrq: crossing -> write", v);
    // Generous: the sampling interval near the threshold is 1 ms; one 160 ms
    // listing on the loop would show as far more than this. The median, not the
    // max: every crossing here wants a re-list, so the defect moves the median,
    // while a shared machine under load (a package build beside it) preempts
    // a crossing now and then (report() prints the max).
    EXPECT_LT(median(v), 50.0) << "the triggers were delayed by the naming work";
}

// kill-cgroup has to choose, so it needs the ranking and names: the whole step
// stays within [kubernetes] scan_budget (20 ms), the listings included.
TEST(TriggerLatency, KillCgroupChoiceIsBoundedByTheScanBudget) {
    const int n = crossings(10);
    std::vector<double> v = run_crossings("kill-cgroup", n);
    ASSERT_EQ(v.size(), static_cast<size_t>(n)) << "a crossing got no action";
    report("kill-cgroup (dry-run): crossing -> action", v);
    // Per crossing (the budget bounds each choice): the max.
    EXPECT_LT(*std::max_element(v.begin(), v.end()), 20.0 + 40.0)
        << "the choice ran past scan_budget (20 ms) by far";
}
