// benchtool: the node benchmark's probes and workloads (runs in the VM).
//   heartbeat OUT SECONDS       every 50 ms: record (CLOCK_MONOTONIC ns, MemAvailable kB,
//                               PSI memory some total us, full total us) in OUT, a shared
//                               mapping (32 bytes a tick, survives a kill); a second thread
//                               runs /bin/true every second and records (start ns, took ns)
//                               in OUT.probe. Normal priority, not locked: it feels what
//                               a shell on the node feels.
//   spawn LOG ADJ -- ARGV...    mlockall, child subreaper; fork, set oom_score_adj ADJ,
//                               exec ARGV; reap every descendant, appending
//                               "exit <ns> <pid> <wait status>" to LOG (so every guard's kill
//                               is seen the same way, whoever sends the signal).
//   storm N MIB HOLD [LOG]      fork N children as fast as it can; each touches MIB MiB, then
//                               sleeps HOLD s (a fork storm of small allocators); their
//                               exits go to LOG as spawn writes them.
//   cachesvc FILE WS_MIB OUT SECONDS
//                               read the first WS_MIB of FILE once, then 4 KiB preads at
//                               random pages of it; record (ns, ops so far) every 100 ms in OUT.
#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <thread>

extern char** environ;

namespace {

long long now_ns() {
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<long long>(t.tv_sec) * 1000000000LL + t.tv_nsec;
}

void sleep_ns(long long ns) {
    timespec ts{static_cast<time_t>(ns / 1000000000LL), static_cast<long>(ns % 1000000000LL)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

long long* map_file(const char* path, size_t bytes) {
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
        std::perror(path);
        std::exit(1);
    }
    void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        std::perror("mmap");
        std::exit(1);
    }
    std::memset(m, 0, bytes);  // fault it in now, not under pressure
    return static_cast<long long*>(m);
}

long long field(int fd, const char* key) {
    char buf[4096];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return -1;
    buf[n] = 0;
    const char* p = std::strstr(buf, key);
    return p ? std::atoll(p + std::strlen(key)) : -1;
}

int heartbeat(const char* out, long seconds) {
    const long ticks = seconds * 20 + 100;
    long long* rec = map_file(out, static_cast<size_t>(ticks) * 32);
    const std::string probe_path = std::string(out) + ".probe";
    long long* probe = map_file(probe_path.c_str(), static_cast<size_t>(seconds + 10) * 16);
    int mi = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
    int psi = open("/proc/pressure/memory", O_RDONLY | O_CLOEXEC);
    std::atomic<bool> stop{false};
    std::thread prober([&] {
        for (long i = 0; i < seconds + 10 && !stop; ++i) {
            const long long t0 = now_ns();
            pid_t pid;
            char arg0[] = "/bin/true";
            char* argv[] = {arg0, nullptr};
            int st = 0;
            if (posix_spawn(&pid, arg0, nullptr, nullptr, argv, environ) == 0) waitpid(pid, &st, 0);
            probe[2 * i + 1] = now_ns() - t0;
            probe[2 * i] = t0;
            sleep_ns(1000000000LL);
        }
    });
    for (long i = 0; i < ticks; ++i) {
        rec[4 * i + 1] = field(mi, "MemAvailable:");
        char buf[256];
        ssize_t n = pread(psi, buf, sizeof buf - 1, 0);
        long long some = -1, full = -1;
        if (n > 0) {
            buf[n] = 0;
            const char* s = std::strstr(buf, "total=");
            if (s) some = std::atoll(s + 6);
            const char* f = s ? std::strstr(s + 6, "total=") : nullptr;
            if (f) full = std::atoll(f + 6);
        }
        rec[4 * i + 2] = some;
        rec[4 * i + 3] = full;
        rec[4 * i] = now_ns();  // last: a non-zero time marks a whole record
        sleep_ns(50000000LL);
    }
    stop = true;
    prober.join();
    return 0;
}

void append(int fd, const std::string& s) {
    ssize_t r = write(fd, s.data(), s.size());
    (void)r;
}

int spawn(const char* log, const char* adj, char** argv) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        std::perror(log);
        return 1;
    }
    mlockall(MCL_CURRENT | MCL_FUTURE);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    pid_t pid = fork();
    if (pid == 0) {
        munlockall();
        int a = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        if (a >= 0) {
            append(a, adj);
            close(a);
        }
        execvp(argv[0], argv);
        std::perror(argv[0]);
        _exit(127);
    }
    append(fd, "start " + std::to_string(now_ns()) + " " + std::to_string(pid) + "\n");
    for (;;) {
        int st = 0;
        pid_t p = waitpid(-1, &st, 0);
        if (p < 0) {
            if (errno == EINTR) continue;
            break;  // ECHILD: every descendant is gone
        }
        append(fd, "exit " + std::to_string(now_ns()) + " " + std::to_string(p) + " " +
                       std::to_string(st) + "\n");
    }
    return 0;
}

void touch(long mib) {
    const size_t len = static_cast<size_t>(mib) << 20;
    char* m = static_cast<char*>(
        mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (m == MAP_FAILED) _exit(1);
    for (size_t i = 0; i < len; i += 4096) m[i] = 0x5a;
}

int storm(long n, long mib, long hold, const char* log) {
    alarm(static_cast<unsigned>(hold + 60));
    int lfd = log ? open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
    for (long i = 0; i < n; ++i) {
        pid_t p = fork();
        if (p == 0) {
            alarm(static_cast<unsigned>(hold + 60));
            touch(mib);
            sleep(static_cast<unsigned>(hold));
            _exit(0);
        }
        if (p < 0) sleep_ns(10000000LL);
    }
    for (;;) {
        int st = 0;
        pid_t p = wait(&st);
        if (p < 0 && errno == EINTR) continue;
        if (p < 0) break;
        if (lfd >= 0)
            append(lfd, "exit " + std::to_string(now_ns()) + " " + std::to_string(p) + " " +
                            std::to_string(st) + "\n");
    }
    return 0;
}

int cachesvc(const char* file, long ws_mib, const char* out, long seconds) {
    alarm(static_cast<unsigned>(seconds + 60));
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        std::perror(file);
        return 1;
    }
    const long slots = seconds * 10 + 100;
    long long* rec = map_file(out, static_cast<size_t>(slots) * 16);
    static char buf[1 << 20];
    const off_t ws = static_cast<off_t>(ws_mib) << 20;
    for (off_t off = 0; off < ws; off += sizeof buf)
        if (pread(fd, buf, sizeof buf, off) <= 0) break;
    posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);  // no readahead: every miss is one 4 KiB read
    std::printf("warm\n");
    std::fflush(stdout);
    std::mt19937_64 rng(42);
    const long long pages = ws / 4096;
    long long ops = 0, next = now_ns();
    long slot = 0;
    const long long end = now_ns() + seconds * 1000000000LL;
    while (slot < slots) {
        const long long t = now_ns();
        if (t >= next) {
            rec[2 * slot + 1] = ops;
            rec[2 * slot] = t;
            ++slot;
            next += 100000000LL;
            if (t > end) break;
        }
        if (pread(fd, buf, 4096, static_cast<off_t>(rng() % pages) * 4096) > 0) ++ops;
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::string cmd = argc > 1 ? argv[1] : "";
    if (cmd == "heartbeat" && argc == 4) return heartbeat(argv[2], std::atol(argv[3]));
    if (cmd == "spawn" && argc >= 6 && std::strcmp(argv[4], "--") == 0)
        return spawn(argv[2], argv[3], argv + 5);
    if (cmd == "storm" && (argc == 5 || argc == 6))
        return storm(std::atol(argv[2]), std::atol(argv[3]), std::atol(argv[4]),
                     argc == 6 ? argv[5] : nullptr);
    if (cmd == "cachesvc" && argc == 6)
        return cachesvc(argv[2], std::atol(argv[3]), argv[4], std::atol(argv[5]));
    std::fprintf(stderr, "usage: benchtool heartbeat|spawn|storm|cachesvc ... (see the source)\n");
    return 2;
}
