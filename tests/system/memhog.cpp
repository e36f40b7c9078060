// oomguard-memhog MIB: allocates MIB MiB of real (touched) anonymous memory,
// prints "ready" and waits until it is killed or a bound of 120 s passes, so a
// forgotten hog cannot linger. The end-to-end test runs it inside the booted
// container to push MemAvailable below oomguard's threshold.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: oomguard-memhog MIB\n");
        return 2;
    }
    char* end = nullptr;
    unsigned long mib = std::strtoul(argv[1], &end, 10);
    if (!end || *end || mib == 0 || mib > 4096) {
        std::fprintf(stderr, "oomguard-memhog: MIB must be 1..4096, got \"%s\"\n", argv[1]);
        return 2;
    }
    const size_t bytes = mib << 20;
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        std::perror("oomguard-memhog: mmap");
        return 1;
    }
    // Touch every page with non-zero data so it is really backed (no zero-page
    // sharing, no THP-zero tricks).
    std::memset(p, 0x5a, bytes);
    std::printf("ready %lu MiB\n", mib);
    std::fflush(stdout);
    sleep(120);
    return 0;
}
