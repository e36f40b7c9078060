// oomg_ramp: allocates and touches real memory at a paced rate and measures how
// long a daemon takes to act after MemAvailable first reads below a threshold.
//
// The ramp samples /proc/meminfo after every chunk it touches. Memory only moves
// while it touches (it is the only fast consumer), so the first below-threshold
// read is within one chunk of the true crossing. The action is either SIGTERM
// (earlyoom) or a byte arriving on a FIFO (oomguard writing its "sysrq" trigger);
// both are timestamped with CLOCK_MONOTONIC where they arrive.
//
// With --fake-meminfo PATH it touches no memory: it rewrites MemAvailable in PATH
// in place (same length, as a daemon that keeps the fd open must see) every
// ~20 us, falling at --rate-mbps from --fake-start-kib to the floor, so both
// daemons read one file falling faster than this machine can fault memory in
// (issue 17: 10 GB/s and more). The crossing and the floor are the times of the
// first write below them.
//
// Bounded: it never touches more than --max-mib, stops at --floor-kib, holds at
// most --hold-ms waiting for a late action, and gives up after --timeout-ms. It
// prints one JSON object on stdout and exits; the kernel frees the memory.
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

constexpr size_t kPage = 4096;

int64_t now_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Time of the first action; 0 until then. Written from a signal handler or the
// FIFO thread, read by the ramp loop.
std::atomic<int64_t> g_action_ns{0};
std::atomic<int> g_actions{0};

void record_action() {
    int64_t zero = 0;
    g_action_ns.compare_exchange_strong(zero, now_ns());
    g_actions.fetch_add(1);
}

struct Options {
    double rate_bps = 0;  // 0: as fast as the machine goes
    uint64_t threshold_kib = 0;
    uint64_t floor_kib = 0;
    uint64_t max_bytes = 2048ull << 20;
    size_t chunk = 1 << 20;
    std::string fifo;
    bool thp = false;
    int64_t hold_ns = 1'000'000'000;
    int64_t timeout_ns = 15'000'000'000;
    bool wait_go = false;  // start ramping only after a line on stdin
    std::string fake_meminfo;  // write this file instead of touching memory
    uint64_t fake_total_kib = 0;
    uint64_t fake_start_kib = 0;
};

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr,
                 "oomg_ramp: %s\n"
                 "usage: oomg_ramp --threshold-kib N --floor-kib N [--rate-mbps R (0: fastest)]\n"
                 "                 [--max-mib N] [--chunk-kib N] [--fifo PATH] [--thp]\n"
                 "                 [--hold-ms N] [--timeout-ms N] [--wait-go]\n",
                 why);
    std::exit(2);
}

uint64_t num(const char* s, const char* name) {
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(s, &end, 10);
    if (errno || end == s || *end) usage((std::string("bad number for ") + name).c_str());
    return v;
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto val = [&](const char* name) {
            if (i + 1 >= argc) usage((std::string("missing value for ") + name).c_str());
            return argv[++i];
        };
        if (a == "--rate-mbps")
            o.rate_bps = static_cast<double>(num(val("--rate-mbps"), "rate")) * 1e6;
        else if (a == "--threshold-kib")
            o.threshold_kib = num(val("--threshold-kib"), "threshold");
        else if (a == "--floor-kib")
            o.floor_kib = num(val("--floor-kib"), "floor");
        else if (a == "--max-mib")
            o.max_bytes = num(val("--max-mib"), "max") << 20;
        else if (a == "--chunk-kib")
            o.chunk = num(val("--chunk-kib"), "chunk") << 10;
        else if (a == "--fifo")
            o.fifo = val("--fifo");
        else if (a == "--thp")
            o.thp = true;
        else if (a == "--fake-meminfo")
            o.fake_meminfo = val("--fake-meminfo");
        else if (a == "--fake-total-kib")
            o.fake_total_kib = num(val("--fake-total-kib"), "total");
        else if (a == "--fake-start-kib")
            o.fake_start_kib = num(val("--fake-start-kib"), "start");
        else if (a == "--wait-go")
            o.wait_go = true;
        else if (a == "--hold-ms")
            o.hold_ns = static_cast<int64_t>(num(val("--hold-ms"), "hold")) * 1'000'000;
        else if (a == "--timeout-ms")
            o.timeout_ns = static_cast<int64_t>(num(val("--timeout-ms"), "timeout")) * 1'000'000;
        else
            usage(("unknown argument " + a).c_str());
    }
    if (!o.threshold_kib || !o.floor_kib || o.floor_kib >= o.threshold_kib)
        usage("need --threshold-kib and a lower --floor-kib");
    // Hard cap: the machine is shared; never more than 4 GiB.
    if (o.max_bytes > (4096ull << 20)) usage("--max-mib is capped at 4096");
    if (o.chunk < kPage || o.chunk % kPage) usage("--chunk-kib must be a multiple of 4");
    if (o.hold_ns > 5'000'000'000 || o.timeout_ns > 60'000'000'000)
        usage("hold <= 5s, timeout <= 60s");
    if (!o.fake_meminfo.empty() &&
        (o.rate_bps <= 0 || o.fake_start_kib <= o.threshold_kib || o.fake_total_kib < o.fake_start_kib))
        usage("--fake-meminfo needs --rate-mbps > 0 and total >= start > threshold");
    return o;
}

// The fake meminfo: fixed-width values, so every rewrite has the same length.
std::string fake_meminfo_text(uint64_t total_kib, uint64_t avail_kib) {
    char buf[256];
    int n = std::snprintf(buf, sizeof buf,
                          "MemTotal:       %15llu kB\nMemFree:        %15llu kB\n"
                          "MemAvailable:   %15llu kB\nSwapTotal:      %15d kB\nSwapFree:       %15d kB\n",
                          static_cast<unsigned long long>(total_kib), static_cast<unsigned long long>(avail_kib),
                          static_cast<unsigned long long>(avail_kib), 0, 0);
    return std::string(buf, static_cast<size_t>(n));
}

// MemAvailable in KiB from a kept /proc/meminfo fd; 0 on failure.
class MemAvailable {
public:
    MemAvailable() : fd_(::open("/proc/meminfo", O_RDONLY | O_CLOEXEC)) {}
    uint64_t kib() {
        ssize_t n = ::pread(fd_, buf_, sizeof buf_ - 1, 0);
        if (n <= 0) return 0;
        buf_[n] = 0;
        const char* p = std::strstr(buf_, "MemAvailable:");
        if (!p) return 0;
        return std::strtoull(p + 13, nullptr, 10);
    }

private:
    int fd_;
    char buf_[8192];
};

// The receiver thread: blocked in a syscall until the action arrives, and
// SCHED_FIFO when we may, so that what we time is the daemon, not how long the
// scheduler takes to run the victim on a busy machine. Both actions arrive the
// same way: a blocked thread wakes up.
void receive_fifo(int fd) {
    for (;;) {
        char c;
        ssize_t n = ::read(fd, &c, 1);
        if (n == 1)
            record_action();
        else if (n < 0 && errno != EINTR)
            return;
    }
}

void receive_sigterm(sigset_t set) {
    for (;;) {
        if (sigwaitinfo(&set, nullptr) == SIGTERM) record_action();
    }
}

bool make_realtime(std::thread& t) {
    sched_param sp{};
    sp.sched_priority = 10;
    return pthread_setschedparam(t.native_handle(), SCHED_FIFO, &sp) == 0;
}

// Falls at o.rate_bps in the fake file; prints the same JSON as the real ramp.
int fake_ramp(const Options& o, bool realtime) {
    int fd = ::open(o.fake_meminfo.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        std::fprintf(stderr, "oomg_ramp: %s: %s\n", o.fake_meminfo.c_str(), std::strerror(errno));
        return 1;
    }
    auto put = [&](uint64_t kib) {
        std::string t = fake_meminfo_text(o.fake_total_kib, kib);
        return ::pwrite(fd, t.data(), t.size(), 0) == static_cast<ssize_t>(t.size());
    };
    if (!put(o.fake_start_kib)) return 1;
    if (o.wait_go) {
        char line[16];
        if (!std::fgets(line, sizeof line, stdin)) return 1;
    }
    const double kib_per_ns = o.rate_bps / 1024.0 / 1e9;
    const int64_t t_start = now_ns();
    int64_t t_cross = 0, t_floor = 0;
    uint64_t level = o.fake_start_kib, samples = 0, cross_kib = 0;
    const char* end = "action";
    for (;;) {
        if (g_action_ns.load()) break;
        const int64_t t = now_ns();
        if (t - t_start > o.timeout_ns) {
            end = "timeout";
            break;
        }
        const double fallen = static_cast<double>(t - t_start) * kib_per_ns;
        level = fallen >= static_cast<double>(o.fake_start_kib - o.floor_kib)
                    ? o.floor_kib - 1
                    : o.fake_start_kib - static_cast<uint64_t>(fallen);
        put(level);
        ++samples;
        if (!t_cross && level < o.threshold_kib) {
            t_cross = now_ns();
            cross_kib = level;
        }
        if (level < o.floor_kib) {
            t_floor = now_ns();
            end = "floor";
            break;
        }
        timespec ts{0, 20'000};
        nanosleep(&ts, nullptr);
    }
    const int64_t t_stop = now_ns();
    while (t_cross && !g_action_ns.load() && now_ns() - t_stop < o.hold_ns) {
        timespec ts{0, 200'000};
        nanosleep(&ts, nullptr);
    }
    const int64_t t_action = g_action_ns.load();
    put(o.fake_start_kib);  // back to the start level: the daemon recovers
    const uint64_t start = o.fake_start_kib, thr = o.threshold_kib;
    std::printf(
        "{\"end\":\"%s\",\"fake\":true,\"start_kib\":%llu,\"threshold_kib\":%llu,\"floor_kib\":%llu,"
        "\"crossed\":%s,\"cross_kib\":%llu,\"min_kib\":%llu,\"end_kib\":%llu,"
        "\"t_start_ns\":%lld,\"t_stop_ns\":%lld,\"t_cross_ns\":%lld,\"t_floor_ns\":%lld,\"t_action_ns\":%lld,"
        "\"latency_us\":%.1f,\"floor_first\":%s,\"actions\":%d,\"touched_mib\":0,"
        "\"rate_mbps\":%.1f,\"samples\":%llu,\"chunk_kib\":0,\"realtime_receiver\":%s}\n",
        end, static_cast<unsigned long long>(start), static_cast<unsigned long long>(thr),
        static_cast<unsigned long long>(o.floor_kib), t_cross ? "true" : "false",
        static_cast<unsigned long long>(cross_kib), static_cast<unsigned long long>(level),
        static_cast<unsigned long long>(level), static_cast<long long>(t_start),
        static_cast<long long>(t_stop), static_cast<long long>(t_cross), static_cast<long long>(t_floor),
        static_cast<long long>(t_action),
        (t_cross && t_action) ? static_cast<double>(t_action - t_cross) / 1e3 : -1.0,
        (t_floor && (!t_action || t_floor < t_action)) ? "true" : "false", g_actions.load(),
        o.rate_bps / 1e6, static_cast<unsigned long long>(samples), realtime ? "true" : "false");
    std::fflush(stdout);
    _exit(0);
}

}  // namespace

int main(int argc, char** argv) {
    Options o = parse(argc, argv);

    // The only process any daemon may pick is this one.
    if (FILE* f = std::fopen("/proc/self/oom_score_adj", "w")) {
        std::fputs("1000", f);
        std::fclose(f);
    }
    // SIGTERM (earlyoom's action) is taken by the receiver thread only.
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, nullptr);
    std::thread receiver;
    if (!o.fifo.empty()) {
        int rfd = ::open(o.fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        // A writer of our own keeps the FIFO from reporting hang-ups between the
        // daemon's open-write-close cycles, so the reader can simply block.
        int wfd = rfd < 0 ? -1 : ::open(o.fifo.c_str(), O_WRONLY | O_CLOEXEC);
        if (rfd < 0 || wfd < 0) {
            std::fprintf(stderr, "oomg_ramp: cannot open FIFO %s: %s\n", o.fifo.c_str(),
                         std::strerror(errno));
            return 1;
        }
        fcntl(rfd, F_SETFL, fcntl(rfd, F_GETFL) & ~O_NONBLOCK);
        receiver = std::thread(receive_fifo, rfd);
    } else {
        receiver = std::thread(receive_sigterm, term);
    }
    const bool realtime = make_realtime(receiver);
    receiver.detach();

    if (!o.fake_meminfo.empty()) return fake_ramp(o, realtime);

    char* mem = static_cast<char*>(mmap(nullptr, o.max_bytes, PROT_READ | PROT_WRITE,
                                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
    if (mem == MAP_FAILED) {
        std::perror("oomg_ramp: mmap");
        return 1;
    }
    madvise(mem, o.max_bytes, o.thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);

    // The bench starts us before the daemon, so that the daemon finds us from its
    // first look (earlyoom sleeps 1 s at startup when its self-test finds no
    // candidate), and says "go" once the daemon is ready.
    if (o.wait_go) {
        char line[16];
        if (!std::fgets(line, sizeof line, stdin)) {
            std::fprintf(stderr, "oomg_ramp: no go on stdin\n");
            return 1;
        }
    }
    MemAvailable avail;
    const uint64_t start_kib = avail.kib();
    if (!start_kib) {
        std::perror("oomg_ramp: /proc/meminfo");
        return 1;
    }
    const int64_t t_start = now_ns();
    int64_t t_cross = 0, t_floor = 0, t_stop = 0;
    uint64_t cross_kib = 0, min_kib = start_kib, touched = 0, samples = 0;
    uint64_t touched_at_cross = 0;
    const char* end = "action";
    size_t i = 0;
    for (;; ++i) {
        if (g_action_ns.load()) break;
        if (touched + o.chunk > o.max_bytes) {
            end = "max";
            break;
        }
        if (now_ns() - t_start > o.timeout_ns) {
            end = "timeout";
            break;
        }
        char* c = mem + touched;
        for (size_t off = 0; off < o.chunk; off += kPage) c[off] = 1;
        touched += o.chunk;
        const int64_t t = now_ns();
        const uint64_t a = avail.kib();
        ++samples;
        if (a < min_kib) min_kib = a;
        if (!t_cross && a < o.threshold_kib) {
            t_cross = t;
            cross_kib = a;
            touched_at_cross = touched;
        }
        if (a < o.floor_kib) {
            t_floor = t;
            end = "floor";
            break;
        }
        if (o.rate_bps > 0) {
            const int64_t due =
                t_start + static_cast<int64_t>(static_cast<double>(touched) / o.rate_bps * 1e9);
            timespec ts{static_cast<time_t>(due / 1'000'000'000),
                        static_cast<long>(due % 1'000'000'000)};
            while (!g_action_ns.load() &&
                   clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
            }
        }
    }
    t_stop = now_ns();
    // Memory is held (below the threshold) while we wait for a late action.
    while (t_cross && !g_action_ns.load() && now_ns() - t_stop < o.hold_ns) {
        timespec ts{0, 200'000};
        nanosleep(&ts, nullptr);
    }
    const uint64_t end_kib = avail.kib();
    const int64_t t_action = g_action_ns.load();
    const double secs_to_cross = t_cross ? static_cast<double>(t_cross - t_start) / 1e9 : 0;

    std::printf(
        "{\"end\":\"%s\",\"start_kib\":%llu,\"threshold_kib\":%llu,\"floor_kib\":%llu,"
        "\"crossed\":%s,\"cross_kib\":%llu,\"min_kib\":%llu,\"end_kib\":%llu,"
        "\"t_start_ns\":%lld,\"t_stop_ns\":%lld,\"t_cross_ns\":%lld,\"t_floor_ns\":%lld,\"t_action_"
        "ns\":%lld,"
        "\"latency_us\":%.1f,\"floor_first\":%s,\"actions\":%d,\"touched_mib\":%.1f,"
        "\"rate_mbps\":%.1f,\"samples\":%llu,\"chunk_kib\":%zu,\"realtime_receiver\":%s}\n",
        end, static_cast<unsigned long long>(start_kib),
        static_cast<unsigned long long>(o.threshold_kib),
        static_cast<unsigned long long>(o.floor_kib), t_cross ? "true" : "false",
        static_cast<unsigned long long>(cross_kib), static_cast<unsigned long long>(min_kib),
        static_cast<unsigned long long>(end_kib), static_cast<long long>(t_start),
        static_cast<long long>(t_stop), static_cast<long long>(t_cross),
        static_cast<long long>(t_floor), static_cast<long long>(t_action),
        (t_cross && t_action) ? static_cast<double>(t_action - t_cross) / 1e3 : -1.0,
        (t_floor && (!t_action || t_floor < t_action)) ? "true" : "false", g_actions.load(),
        static_cast<double>(touched) / (1 << 20),
        secs_to_cross > 0 ? static_cast<double>(touched_at_cross) / secs_to_cross / 1e6 : 0.0,
        static_cast<unsigned long long>(samples), o.chunk >> 10, realtime ? "true" : "false");
    std::fflush(stdout);
    _exit(0);
}
