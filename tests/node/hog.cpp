// oomguard-node-hog: the workload of the node lab's "pods" (tests/node). Runs
// inside the VM, in a container's cgroup, and does what a container would:
//   --file PATH --file-mib N   write N MiB to PATH (page cache charged to the
//                              cgroup: the ranking decoy), then keep the file
//   --anon MIB                 touch MIB MiB of anonymous memory, 1 MiB a step
//   --rate MIBPS               at most this fast (0: as fast as it goes)
//   --crossing-mib T --log F   after every step read MemAvailable; the first
//                              time it is below T MiB, append
//                              "crossing <CLOCK_MONOTONIC ns> <MemAvailable kB> <MiB touched>"
//                              to F (written at once: it must outlive a kill)
//   --samples F                after every step record (CLOCK_MONOTONIC ns,
//                              MemAvailable kB) in F, a shared mapping that
//                              survives a kill: 16 bytes a step, little endian
//   --oom-score-adj N          as the runtime sets it for the container
//   --procs N                  N processes in all (the others just sleep)
//   --hold SEC                 then sleep; the process never lives longer than
//                              SEC + 60 s in all (alarm), so nothing lingers
// Prints "started <procs>" on stdout once oom_score_adj is set and the other
// processes run, "ready <MiB>" once allocated.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

namespace {

long long mono_ns() {
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<long long>(t.tv_sec) * 1000000000LL + t.tv_nsec;
}

// MemAvailable in kB, -1 on error. fd stays open; pread like oomguard does.
long long mem_available_kb(int fd) {
    char buf[4096];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return -1;
    buf[n] = 0;
    const char* p = std::strstr(buf, "MemAvailable:");
    return p ? std::atoll(p + 13) : -1;
}

void append(const char* path, const std::string& line) {
    if (!path) return;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return;
    ssize_t r = write(fd, line.data(), line.size());
    (void)r;
    close(fd);
}

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr, "oomguard-node-hog: %s\n", why);
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    long anon_mib = 0, rate = 0, crossing_mib = -1, file_mib = 0, procs = 1, hold = 120;
    const char* log = nullptr;
    const char* file = nullptr;
    const char* adj = nullptr;
    const char* samples_path = nullptr;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (i + 1 >= argc) usage(("missing value for " + a).c_str());
        const char* v = argv[++i];
        if (a == "--anon")
            anon_mib = std::atol(v);
        else if (a == "--rate")
            rate = std::atol(v);
        else if (a == "--crossing-mib")
            crossing_mib = std::atol(v);
        else if (a == "--log")
            log = v;
        else if (a == "--file")
            file = v;
        else if (a == "--file-mib")
            file_mib = std::atol(v);
        else if (a == "--oom-score-adj")
            adj = v;
        else if (a == "--samples")
            samples_path = v;
        else if (a == "--procs")
            procs = std::atol(v);
        else if (a == "--hold")
            hold = std::atol(v);
        else
            usage(("unknown option " + a).c_str());
    }
    if (anon_mib < 0 || anon_mib > 8192 || procs < 1 || procs > 64 || hold < 0 || hold > 600)
        usage("a value is out of range");
    alarm(static_cast<unsigned>(hold + 60));  // the default action ends the process

    if (adj) {
        int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, adj, std::strlen(adj)) < 0) {
            std::perror("oomguard-node-hog: oom_score_adj");
            return 1;
        }
        close(fd);
    }
    for (long i = 1; i < procs; ++i) {
        pid_t p = fork();
        if (p == 0) {
            sleep(static_cast<unsigned>(hold + 30));
            _exit(0);
        }
    }
    // Set up as a container's processes are: the driver may look now.
    std::printf("started %ld\n", procs);
    std::fflush(stdout);
    if (file && file_mib > 0) {
        int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            std::perror("oomguard-node-hog: open --file");
            return 1;
        }
        static char block[1 << 20];
        std::memset(block, 0x33, sizeof block);
        for (long i = 0; i < file_mib; ++i)
            if (write(fd, block, sizeof block) != static_cast<ssize_t>(sizeof block)) {
                std::perror("oomguard-node-hog: write --file");
                return 1;
            }
        fdatasync(fd);  // clean page cache: reclaimable, like a container's read data
        close(fd);
    }
    const int meminfo =
        crossing_mib >= 0 || samples_path ? open("/proc/meminfo", O_RDONLY | O_CLOEXEC) : -1;
    long long* samples = nullptr;
    if (samples_path && anon_mib > 0) {
        int fd = open(samples_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        const size_t len = static_cast<size_t>(anon_mib) * 2 * sizeof(long long);
        if (fd < 0 || ftruncate(fd, static_cast<off_t>(len)) != 0) {
            std::perror("oomguard-node-hog: --samples");
            return 1;
        }
        void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            std::perror("oomguard-node-hog: mmap --samples");
            return 1;
        }
        samples = static_cast<long long*>(m);
        close(fd);
    }
    bool crossed = false;
    char* mem = nullptr;
    if (anon_mib > 0) {
        const size_t step = 1 << 20;
        mem = static_cast<char*>(mmap(nullptr, anon_mib * step, PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        if (mem == MAP_FAILED) {
            std::perror("oomguard-node-hog: mmap");
            return 1;
        }
        const long long t0 = mono_ns();
        for (long i = 0; i < anon_mib; ++i) {
            if (rate > 0) {
                // Step i is due at t0 + i/rate seconds.
                long long due = t0 + i * 1000000000LL / rate;
                long long now = mono_ns();
                if (due > now) {
                    timespec ts{static_cast<time_t>((due - now) / 1000000000LL),
                                static_cast<long>((due - now) % 1000000000LL)};
                    nanosleep(&ts, nullptr);
                }
            }
            std::memset(mem + i * step, 0x5a, step);  // non-zero: really backed
            if (meminfo >= 0 && (samples || !crossed)) {
                long long kb = mem_available_kb(meminfo);
                if (samples) {
                    samples[2 * i + 1] = kb;
                    samples[2 * i] = mono_ns();  // last: a non-zero time marks a whole record
                }
                if (!crossed && crossing_mib >= 0 && kb >= 0 && kb < crossing_mib * 1024) {
                    crossed = true;
                    append(log, "crossing " + std::to_string(mono_ns()) + " " + std::to_string(kb) +
                                    " " + std::to_string(i + 1) + "\n");
                }
            }
        }
    }
    std::printf("ready %ld\n", anon_mib);
    std::fflush(stdout);
    append(log, "ready " + std::to_string(mono_ns()) + " " + std::to_string(anon_mib) + "\n");
    sleep(static_cast<unsigned>(hold));
    return 0;
}
