// oomg_unit_cost: the cost of one MemAvailable sample (MeminfoReader::sample on
// the real /proc/meminfo) against its physical floor, a bare pread of the same
// file, plus the other pieces of the hot path (parse, Policy::decide, the
// trigger write to a FIFO). Blocks of each are interleaved round by round so
// that drift on the shared machine hits all of them alike. Prints JSON lines.
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "actions/trigger.hpp"
#include "policy/policy.hpp"
#include "sensors/meminfo.hpp"

using namespace oomguard;

namespace {

double now_s() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

struct Case {
    const char* name;
    int per_block;
    std::function<void()> op;
    std::vector<double> ns_per_op;  // one entry per round
};

double quantile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    double pos = q * static_cast<double>(v.size() - 1);
    size_t lo = static_cast<size_t>(pos);
    size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

volatile uint64_t g_sink;

}  // namespace

int main(int argc, char** argv) {
    int rounds = argc > 1 ? std::atoi(argv[1]) : 40;
    const char* proc = argc > 2 ? argv[2] : "/proc";
    if (rounds < 5 || rounds > 1000) {
        std::fprintf(stderr, "usage: oomg_unit_cost [ROUNDS 5..1000] [PROC_ROOT]\n");
        return 2;
    }

    const std::string meminfo = std::string(proc) + "/meminfo";
    int fd = ::open(meminfo.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        std::perror(meminfo.c_str());
        return 1;
    }
    static char buf[16384];
    MeminfoReader reader;
    if (auto st = reader.open(proc); !st) {
        std::fprintf(stderr, "%s\n", st.error().message.c_str());
        return 1;
    }
    ssize_t len = ::pread(fd, buf, sizeof buf - 1, 0);
    const std::string captured(buf, static_cast<size_t>(std::max<ssize_t>(len, 0)));

    MemSample s;
    reader.sample(s);
    PolicySettings ps;
    ps.min_available = SizeOrPercent{false, 350ull << 20, 0};
    Policy policy(ps);
    const Duration t0 = std::chrono::seconds(1000);
    int64_t tick = 0;

    // A FIFO with a reader of our own, drained after every block, stands in
    // for /proc/sysrq-trigger (never the real one).
    char dir[] = "/tmp/oomg-unit-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    const std::string fifo = std::string(dir) + "/trigger";
    if (mkfifo(fifo.c_str(), 0600) != 0) return 1;
    int rfd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    int kept = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    SysrqTrigger trigger(fifo);
    auto drain = [&] {
        char b[4096];
        while (::read(rfd, b, sizeof b) > 0) {
        }
    };

    std::vector<Case> cases = {
        {"pread_meminfo_floor",
         2000,
         [&] { g_sink = static_cast<uint64_t>(::pread(fd, buf, sizeof buf - 1, 0)); },
         {}},
        {"meminfo_sample",
         2000,
         [&] {
             reader.sample(s);
             g_sink = s.mem_available;
         },
         {}},
        {"parse_meminfo_only",
         20000,
         [&] {
             parse_meminfo(captured, s);
             g_sink = s.mem_available;
         },
         {}},
        {"policy_decide",
         20000,
         [&] {
             Decision d = policy.decide(s, t0 + std::chrono::microseconds(++tick));
             g_sink = static_cast<uint64_t>(d.next_poll.count());
         },
         {}},
        {"trigger_fire_fifo",
         1000,
         [&] {
             Status st = trigger.fire();
             g_sink = st ? 1 : 0;
         },
         {}},
        {"write_kept_fd_floor",
         1000,
         [&] { g_sink = static_cast<uint64_t>(::write(kept, "f", 1)); },
         {}},
    };

    for (int r = 0; r < rounds; ++r) {
        for (auto& c : cases) {
            c.op();  // warm
            double a = now_s();
            for (int i = 0; i < c.per_block; ++i) c.op();
            double b = now_s();
            c.ns_per_op.push_back((b - a) * 1e9 / c.per_block);
            drain();
        }
    }
    for (auto& c : cases) {
        std::printf(
            "{\"name\":\"%s\",\"rounds\":%d,\"per_round\":%d,\"p50_ns\":%.1f,\"p95_ns\":%.1f,"
            "\"min_ns\":%.1f,\"max_ns\":%.1f}\n",
            c.name, rounds, c.per_block, quantile(c.ns_per_op, 0.5), quantile(c.ns_per_op, 0.95),
            quantile(c.ns_per_op, 0.0), quantile(c.ns_per_op, 1.0));
    }
    ::close(kept);
    ::close(rfd);
    ::unlink(fifo.c_str());
    ::rmdir(dir);
    return 0;
}
