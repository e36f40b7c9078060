// Cost of predicting the kernel's victim (issue 14): OomScoreScanner over the
// real /proc with N extra sleeping tasks of ours (default 5,000), against the
// floor of one openat+read+close of each task's oom_score without parsing.
// Reports tasks/ms as a median of repeated scans. Not a test; never in CI.
//   oomg_oom_score_bench [tasks=5000] [rounds=15]
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "sensors/oom_score.hpp"

using namespace oomguard;

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// The floor: read every pid's oom_score, nothing else.
size_t bare_reads() {
    int procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR* d = fdopendir(dup(procfd));
    size_t n = 0;
    char path[64], buf[32];
    while (dirent* e = readdir(d)) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        std::snprintf(path, sizeof path, "%.20s/oom_score", e->d_name);
        int fd = openat(procfd, path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        if (read(fd, buf, sizeof buf) > 0) ++n;
        close(fd);
    }
    closedir(d);
    close(procfd);
    return n;
}

}  // namespace

int main(int argc, char** argv) {
    const int tasks = argc > 1 ? std::atoi(argv[1]) : 5000;
    const int rounds = argc > 2 ? std::atoi(argv[2]) : 15;
    std::vector<pid_t> kids;
    kids.reserve(static_cast<size_t>(tasks));
    for (int i = 0; i < tasks; ++i) {
        pid_t p = fork();
        if (p < 0) break;
        if (p == 0) {
            pause();
            _exit(0);
        }
        kids.push_back(p);
    }
    std::vector<double> scan_rate, bare_rate, scan_ms;
    uint32_t seen = 0;
    for (int r = 0; r < rounds; ++r) {
        OomScoreScanner s("/proc");
        auto t0 = std::chrono::steady_clock::now();
        auto v = s.scan(std::chrono::seconds(10));
        auto t1 = std::chrono::steady_clock::now();
        size_t n = bare_reads();
        auto t2 = std::chrono::steady_clock::now();
        if (!v.ok()) {
            std::fprintf(stderr, "scan: %s\n", v.error().message.c_str());
            break;
        }
        seen = s.stats().tasks;
        double ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
        scan_ms.push_back(ms);
        scan_rate.push_back(s.stats().tasks / ms);
        bare_rate.push_back(n / std::chrono::duration<double, std::milli>(t2 - t1).count());
    }
    for (pid_t p : kids) kill(p, SIGKILL);  // only our own children
    for (pid_t p : kids) waitpid(p, nullptr, 0);
    if (scan_rate.empty()) return 1;
    std::printf("| tasks in /proc | scan median ms | scan tasks/ms | bare oom_score reads tasks/ms | ratio |\n");
    std::printf("|---|---|---|---|---|\n");
    std::printf("| %u (+%zu ours) | %.2f | %.0f | %.0f | %.2f |\n", seen, kids.size(), median(scan_ms),
                median(scan_rate), median(bare_rate), median(bare_rate) / median(scan_rate));
    return 0;
}
