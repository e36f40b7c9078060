// The hot path (sample -> decide -> trigger write) must not allocate. This test
// binary interposes malloc and friends with counting wrappers (glibc's
// __libc_* underneath) and drives the real pieces in loops: MeminfoReader on a
// fake and on the real /proc, Policy::decide across whole episodes, the trigger
// write to a FIFO, and finally the daemon's own poll() loop in steady state.
// Only allocations made by the thread under test while counting is on count.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "actions/trigger.hpp"
#include "app/wiring.hpp"
#include "bus/bus_publisher.hpp"
#include "cgroup/cgroup_heaviest_source.hpp"
#include "cgroup/cgroup_targeting.hpp"
#include "cgroup/oom_reporter.hpp"
#include "daemon.hpp"
#include "policy/policy.hpp"
#include "sensors/meminfo.hpp"
#include "service/metrics.hpp"
#include "support/fake_proc.hpp"
#include "support/files.hpp"

// ---- counting allocator ---------------------------------------------------
extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);
}

namespace {
std::atomic<uint64_t> g_allocations{0};
thread_local bool t_counting = false;

inline void count() {
    if (t_counting) g_allocations.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

extern "C" {
void* malloc(size_t n) {
    count();
    return __libc_malloc(n);
}
void* calloc(size_t n, size_t m) {
    count();
    return __libc_calloc(n, m);
}
void* realloc(void* p, size_t n) {
    count();
    return __libc_realloc(p, n);
}
void* memalign(size_t a, size_t n) {
    count();
    return __libc_memalign(a, n);
}
void* aligned_alloc(size_t a, size_t n) {
    count();
    return __libc_memalign(a, n);
}
int posix_memalign(void** out, size_t a, size_t n) {
    count();
    void* p = __libc_memalign(a, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
void free(void* p) { __libc_free(p); }
}

// open() is interposed too, to note the allocation count at the moment the
// daemon opens its trigger: nothing may be allocated from the sample that
// goes below the threshold up to there.
namespace {
std::atomic<const char*> g_trigger_path{nullptr};
std::atomic<uint64_t> g_allocs_at_trigger_open{~0ull};
}  // namespace

extern "C" int open(const char* path, int flags, ...) {
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = static_cast<mode_t>(va_arg(ap, int));
        va_end(ap);
    }
    const char* trigger = g_trigger_path.load();
    // O_APPEND: the open of the write (SysrqTrigger::fire), not the check at
    // start/reload (probe(), which opens without writing).
    if (t_counting && trigger && (flags & O_APPEND) && std::strcmp(path, trigger) == 0) {
        uint64_t none = ~0ull;
        g_allocs_at_trigger_open.compare_exchange_strong(none, g_allocations.load());
    }
    return static_cast<int>(syscall(SYS_openat, AT_FDCWD, path, flags, mode));
}

namespace {

using namespace oomguard;
using namespace std::chrono_literals;

// Counts allocations of this thread between construction and count().
class Counting {
public:
    Counting() : start_(g_allocations.load()) { t_counting = true; }
    ~Counting() { t_counting = false; }
    uint64_t count() const { return g_allocations.load() - start_; }

private:
    uint64_t start_;
};

using oomguard::test::TempDir;

// tests/support's FakeProc (meminfo rewritten in place, same length, through
// a kept fd, no allocation): MemTotal 16 GiB, MemAvailable set in KiB here.
struct FakeMeminfo : oomguard::test::FakeProc {
    explicit FakeMeminfo(const std::string& root) : FakeProc(root, 16ull << 30) {}
    void set_kib(uint64_t avail_kib) { set_available(avail_kib << 10); }
};

TEST(HotPathAlloc, CounterSeesAllocations) {
    // The hook works, so the zero counts below mean something.
    Counting c;
    auto p = std::make_unique<int>(42);
    std::string s(100, 'x');
    void* m = std::malloc(10);
    std::free(m);
    EXPECT_GE(c.count(), 3u);
    EXPECT_EQ(*p + static_cast<int>(s.size()), 142);
}

TEST(HotPathAlloc, SampleAndDecideAcrossEpisodesDoNotAllocate) {
    TempDir dir;
    FakeMeminfo mem(dir.file("proc"));
    MeminfoReader reader;
    ASSERT_TRUE(reader.open(dir.file("proc")));
    PolicySettings ps;
    ps.min_available = SizeOrPercent{false, 500ull << 20, 0};
    ps.warn_available = SizeOrPercent{false, 1ull << 30, 0};
    ps.repeat_after = 5ms;
    Policy policy(ps);

    uint64_t triggers = 0, warnings = 0, recoveries = 0;
    Duration now = 1000s;
    const uint64_t levels_kib[] = {4ull << 20,   900ull << 10, 499ull << 10,
                                   499ull << 10, 100ull << 10, 2ull << 20};
    Counting c;
    for (int i = 0; i < 3000; ++i) {
        mem.set_kib(levels_kib[i % 6]);
        MemSample s;
        ASSERT_TRUE(reader.sample(s));
        now += 3ms;
        Decision d = policy.decide(s, now);
        triggers += d.trigger;
        warnings += d.warn;
        recoveries += d.episode_ended;
    }
    EXPECT_EQ(c.count(), 0u) << "allocations in MeminfoReader::sample + Policy::decide";
    // The loop went through every branch: warnings, triggers (and repeats), recoveries.
    EXPECT_GT(triggers, 500u);
    EXPECT_GT(warnings, 100u);
    EXPECT_GT(recoveries, 100u);
}

TEST(HotPathAlloc, SampleOfRealProcMeminfoDoesNotAllocate) {
    MeminfoReader reader;
    ASSERT_TRUE(reader.open("/proc"));
    uint64_t sum = 0;
    Counting c;
    for (int i = 0; i < 2000; ++i) {
        MemSample s;
        ASSERT_TRUE(reader.sample(s));
        sum += s.mem_available > 0;
    }
    EXPECT_EQ(c.count(), 0u);
    EXPECT_EQ(sum, 2000u);
}

TEST(HotPathAlloc, TriggerWriteToFifoDoesNotAllocate) {
    TempDir dir;
    const std::string fifo = dir.file("trigger");
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    int rfd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(rfd, 0);
    SysrqTrigger trigger(fifo);
    size_t received = 0;
    char buf[256];
    {
        Counting c;
        for (int i = 0; i < 1000; ++i) {
            ASSERT_TRUE(trigger.fire());
            if (i % 100 == 99) {
                ssize_t n;
                while ((n = ::read(rfd, buf, sizeof buf)) > 0) received += static_cast<size_t>(n);
            }
        }
        EXPECT_EQ(c.count(), 0u) << "allocations in SysrqTrigger::fire";
    }
    EXPECT_EQ(received, 1000u);
    ::close(rfd);
}

// A small cgroup v2 node: kubepods with a few BestEffort pods of one container
// each, and their kubelet log directories, so the trigger entry names a pod.
void make_node(const TempDir& dir) {
    namespace fs = std::filesystem;
    auto put = [](const std::string& path, const std::string& text) {
        fs::create_directories(fs::path(path).parent_path());
        std::ofstream(path) << text;
    };
    const std::string cg = dir.file("cgroup");
    put(cg + "/cgroup.controllers", "cpu memory pids\n");
    for (int i = 1; i <= 4; ++i) {
        char uid[40], cid[72];
        std::snprintf(uid, sizeof uid, "0000000%d-0000-4000-8000-00000000000%d", i, i);
        std::snprintf(cid, sizeof cid, "%064d", i);
        std::string uid_us = uid;
        for (auto& c : uid_us)
            if (c == '-') c = '_';
        const std::string pod = cg + "/kubepods/besteffort/pod" + uid;
        for (const std::string& d :
             {cg + "/kubepods", cg + "/kubepods/besteffort", pod, pod + "/" + cid}) {
            const uint64_t usage = static_cast<uint64_t>(i) * 100 << 20;
            put(d + "/memory.current", std::to_string(usage) + "\n");
            put(d + "/memory.max", "max\n");
            put(d + "/memory.stat", "anon " + std::to_string(usage) + "\ninactive_file 0\n");
            put(d + "/memory.oom.group", "1\n");
            put(d + "/cgroup.procs", "");
        }
        fs::create_directories(
            dir.file("log/pods/default_pod" + std::to_string(i) + "_" + uid + "/main"));
    }
    fs::create_directories(dir.file("log/containers"));
    put(dir.file("kmsg"), "");
}

// The daemon's whole loop (timerfd wakeup, sample, decide, re-arm, STATUS to a
// NOTIFY_SOCKET once a second) in steady state, polling every millisecond; then
// the path from the sample below the threshold to the trigger write. Wired as
// main.cpp wires it (the cgroup hook, kmsg reporter and metrics sink installed,
// log_heaviest = true): the trigger entry names the heaviest pod, and still
// nothing may allocate before the write.
TEST(HotPathAlloc, DaemonLoopInSteadyStateDoesNotAllocate) {
    TempDir dir;
    FakeMeminfo mem(dir.file("proc"));
    mem.set_kib(600ull << 10);  // 600 MiB, above the 500 MiB threshold
    make_node(dir);
    const std::string fifo = dir.file("trigger");
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    int rfd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(rfd, 0);
    {
        std::ofstream cfg(dir.file("oomguard.toml"));
        // A huge assumed fill rate and idle_interval = min_interval keep the poll
        // interval at 1ms.
        // The steady state sits above the recovery level: below it, the ranking
        // is reported once a second (names, containers: allocations, off the
        // sample path) so that a trigger's report has figures from just before.
        cfg << "[memory]\nmin_available = \"500MiB\"\nrecover_available = \"550MiB\"\n"
            << "[action]\nmode = \"sysrq\"\nsysrq_trigger = \"" << fifo << "\"\n"
            << "[poll]\nmin_interval = \"1ms\"\nidle_interval = \"1ms\"\nmax_interval = \"1s\"\nfill_rate = "
               "\"1000GiB/s\"\npsi = false\n"
            << "[paths]\nproc = \"" << dir.file("proc") << "\"\ncgroup = \"" << dir.file("cgroup")
            << "\"\nkmsg = \"" << dir.file("kmsg") << "\"\n"
            << "[kubernetes]\nlog_heaviest = true\npod_logs_dir = \"" << dir.file("log/pods")
            << "\"\n";
    }
    // Our own NOTIFY_SOCKET, so the once-a-second STATUS path runs too.
    const std::string sock_path = dir.file("notify");
    int sock = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, sock_path.c_str(), sizeof sa.sun_path - 1);
    ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    setenv("NOTIFY_SOCKET", sock_path.c_str(), 1);

    DaemonOptions opts;
    opts.config_path = dir.file("oomguard.toml");
    opts.log_target = LogTarget::Stderr;
    opts.mlock = false;
    opts.allow_insecure_config = true;
    Daemon daemon(opts);
    ASSERT_TRUE(daemon.init());  // blocks SIGTERM/SIGINT/SIGHUP in this thread
    unsetenv("NOTIFY_SOCKET");
    // The wiring main.cpp uses (src/app/wiring.hpp), and the bus side as
    // main.cpp has it: the publisher on the loop, registered last, and a thread
    // that takes the snapshots (the D-Bus thread has its own tests).
    Components components(daemon);
    BusChannel channel;
    BusPublisher publisher(daemon, channel);
    publisher.set_heaviest_source(&components.heaviest);
    components.add_adapter(publisher, publisher);
    std::atomic<bool> stop_bus{false};
    std::thread bus([&] {
        BusSnapshot copy;
        uint64_t seen = 0;
        while (!stop_bus) {
            {
                std::lock_guard<std::mutex> g(channel.mutex);
                if (channel.version != seen) {
                    seen = channel.version;
                    copy = channel.snapshot;
                }
                channel.events.clear();
            }
            std::this_thread::sleep_for(500us);
        }
    });

    // The daemon runs in this thread (it owns the signalfd); a helper thread,
    // which inherits the blocked signals, takes the snapshots and stops it.
    std::atomic<uint64_t> steady_allocs{~0ull};
    std::atomic<uint64_t> allocs_before_crossing{0};
    std::atomic<uint64_t> trigger_bytes{0};
    g_trigger_path = fifo.c_str();
    std::thread helper([&] {
        std::this_thread::sleep_for(300ms);  // start-up logging is allowed
        const uint64_t a = g_allocations.load();
        std::this_thread::sleep_for(1500ms);  // > 1 s: includes STATUS updates
        allocs_before_crossing = g_allocations.load();
        steady_allocs = allocs_before_crossing - a;
        // Something happens: below the threshold, the trigger arrives (and the
        // daemon may allocate to log it).
        mem.set_kib(400ull << 10);
        char b[64];
        for (int i = 0; i < 200 && trigger_bytes.load() == 0; ++i) {
            std::this_thread::sleep_for(10ms);
            ssize_t n = ::read(rfd, b, sizeof b);
            if (n > 0) trigger_bytes += static_cast<uint64_t>(n);
        }
        std::this_thread::sleep_for(50ms);  // the trigger entry is logged after the write
        ::kill(::getpid(), SIGTERM);
    });
    int rc;
    {
        Counting c;
        rc = daemon.run();
    }
    helper.join();
    stop_bus = true;
    bus.join();
    char b[4096];
    while (::recv(sock, b, sizeof b, 0) > 0) {
    }
    ::close(sock);
    ::close(rfd);

    EXPECT_EQ(rc, 0);
    EXPECT_EQ(steady_allocs.load(), 0u) << "the steady-state loop allocated";
    // It really looped: ~1000 samples a second for 1.8 s.
    EXPECT_GT(daemon.state().samples_total, 500u);
    EXPECT_GE(trigger_bytes.load(), 1u) << "no trigger after the crossing";
    ASSERT_NE(g_allocs_at_trigger_open.load(), ~0ull) << "the daemon never opened its trigger";
    EXPECT_EQ(g_allocs_at_trigger_open.load() - allocs_before_crossing.load(), 0u)
        << "allocations between the below-threshold sample and the trigger write";
    // The production wiring was really there: the trigger named the heaviest pod.
    EXPECT_EQ(daemon.state().triggers_total, 1u);
    EXPECT_NE(components.targeting.last_report().top.size(), 0u);
    if (!components.targeting.last_report().top.empty()) {
        EXPECT_EQ(components.targeting.last_report().top[0].pod_name, "pod4");
    }
    g_trigger_path = nullptr;
}

// The same loop with the D-Bus side's daemon-thread half installed as in
// src/main.cpp (BusPublisher as sink and source): publishing each changed
// state into the snapshot, skipping the unchanged ones, and taking requests must
// not allocate either. A stand-in for
// the bus thread keeps taking the snapshot (holding the channel's lock, so
// the daemon's try_lock also meets a busy lock) and posts no request.
TEST(HotPathAlloc, DaemonLoopWithTheBusPublisherDoesNotAllocate) {
    TempDir dir;
    FakeMeminfo mem(dir.file("proc"));
    mem.set_kib(600ull << 10);
    const std::string fifo = dir.file("trigger");
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    int rfd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(rfd, 0);
    {
        std::ofstream cfg(dir.file("oomguard.toml"));
        cfg << "[memory]\nmin_available = \"500MiB\"\n"
            << "[action]\nmode = \"sysrq\"\nsysrq_trigger = \"" << fifo << "\"\n"
            << "[poll]\nmin_interval = \"1ms\"\nidle_interval = \"1ms\"\nmax_interval = \"1s\"\nfill_rate = "
               "\"1000GiB/s\"\npsi = false\n"
            << "[paths]\nproc = \"" << dir.file("proc") << "\"\n"
            << "[kubernetes]\nlog_heaviest = false\n";
    }
    DaemonOptions opts;
    opts.config_path = dir.file("oomguard.toml");
    opts.log_target = LogTarget::Stderr;
    opts.mlock = false;
    Daemon daemon(opts);
    ASSERT_TRUE(daemon.init());
    BusChannel channel;
    BusPublisher publisher(daemon, channel);
    daemon.add_source(&publisher);
    daemon.add_sink(&publisher);

    std::atomic<bool> stop_bus{false};
    std::atomic<uint64_t> snapshots{0};
    std::thread bus([&] {
        BusSnapshot copy;
        uint64_t seen = 0;
        while (!stop_bus) {
            {
                std::lock_guard<std::mutex> g(channel.mutex);
                if (channel.version != seen) {
                    seen = channel.version;
                    copy = channel.snapshot;
                    ++snapshots;
                }
                channel.events.clear();
                std::this_thread::sleep_for(200us);  // hold it a while: try_lock meets it busy
            }
            std::this_thread::sleep_for(300us);
        }
    });
    std::atomic<uint64_t> steady_allocs{~0ull};
    std::atomic<uint64_t> snapshots_in_window{0};
    std::thread helper([&] {
        std::this_thread::sleep_for(300ms);
        const uint64_t a = g_allocations.load();
        const uint64_t s0 = snapshots.load();
        // An unchanged state is not published again (issue 17): MemAvailable
        // grows by 4 KiB every 100 ms, so that each once-a-second state differs.
        for (int i = 1; i <= 25; ++i) {
            mem.set_kib((600ull << 10) + static_cast<uint64_t>(i) * 4);
            std::this_thread::sleep_for(100ms);
        }
        steady_allocs = g_allocations.load() - a;
        snapshots_in_window = snapshots.load() - s0;
        ::kill(::getpid(), SIGTERM);
    });
    int rc;
    {
        Counting c;
        rc = daemon.run();
    }
    helper.join();
    stop_bus = true;
    bus.join();
    ::close(rfd);
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(steady_allocs.load(), 0u) << "the steady-state loop with the bus publisher allocated";
    EXPECT_GE(snapshots_in_window.load(), 2u) << "the publisher did not publish the changed states";
    EXPECT_GT(daemon.state().samples_total, 500u);
}

}  // namespace
