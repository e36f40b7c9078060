// Real cgroup v1 memory cgroups for tests: a uniquely named parent under the
// machine's memory hierarchy (/sys/fs/cgroup/memory/oomguard-test-<pid>-<n>),
// children the test forks that join a cgroup and allocate known amounts, and
// cleanup that always runs: children SIGKILLed and reaped, cgroups removed
// deepest first. Leftovers of a crashed earlier run (dead pid) are removed too.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "fixture.hpp"

namespace oomguard::test {

inline const char* kRealMemoryRoot = "/sys/fs/cgroup/memory";

// "" when real v1 memory cgroups can be used here, else why not.
inline std::string real_cgroups_unavailable() {
    if (::geteuid() != 0) return "needs root to create memory cgroups";
    if (::access((std::string(kRealMemoryRoot) + "/memory.usage_in_bytes").c_str(), F_OK) != 0)
        return std::string("no cgroup v1 memory controller at ") + kRealMemoryRoot +
               " (these tests use v1; v2 layouts are covered by fixture trees)";
    if (::access(kRealMemoryRoot, W_OK) != 0)
        return std::string(kRealMemoryRoot) + " is not writable";
    return "";
}

// In a gtest body: skips, saying why, where real cgroups cannot be used.
#define REQUIRE_REAL_CGROUPS()                                        \
    do {                                                              \
        std::string why = oomguard::test::real_cgroups_unavailable(); \
        if (!why.empty()) GTEST_SKIP() << "real cgroups: " << why;    \
    } while (0)

class RealCgroupTree {
public:
    RealCgroupTree() {
        remove_stale();
        static int counter = 0;
        name_ = "oomguard-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
        parent_ = std::string(kRealMemoryRoot) + "/" + name_;
        make("");
    }
    ~RealCgroupTree() { cleanup(); }
    RealCgroupTree(const RealCgroupTree&) = delete;
    RealCgroupTree& operator=(const RealCgroupTree&) = delete;

    // Absolute path of the parent, and its path as the kernel prints it (task_memcg).
    const std::string& parent() const { return parent_; }
    std::string kernel_path(const std::string& rel = "") const {
        return "/" + name_ + (rel.empty() ? "" : "/" + rel);
    }

    void make(const std::string& rel) {
        std::string acc = parent_;
        if (::mkdir(acc.c_str(), 0755) != 0 && errno != EEXIST)
            throw std::runtime_error("mkdir " + acc);
        size_t i = 0;
        while (i < rel.size()) {
            size_t j = rel.find('/', i);
            if (j == std::string::npos) j = rel.size();
            acc += "/" + rel.substr(i, j - i);
            if (::mkdir(acc.c_str(), 0755) != 0 && errno != EEXIST)
                throw std::runtime_error("mkdir " + acc + ": " + std::strerror(errno));
            i = j + 1;
        }
    }
    void set_limit(const std::string& rel, uint64_t bytes) const {
        makeFile(parent_ + "/" + rel + "/memory.limit_in_bytes", std::to_string(bytes));
    }
    // Removes one (empty) cgroup; false when the kernel refused.
    bool remove(const std::string& rel) const {
        return ::rmdir((parent_ + "/" + rel).c_str()) == 0;
    }

    struct Child {
        pid_t pid = -1;
        std::string cgroup;
    };

    // Forks a child that joins <parent>/<rel>, touches `anon` bytes of anonymous
    // memory and writes `file` bytes of page cache to a file in `file_dir`, then
    // waits for SIGKILL (or exits at once when `exit_after`). Returns after the
    // child is ready, or -1 if it died first (e.g. the OOM killer).
    pid_t spawn(const std::string& rel, uint64_t anon, uint64_t file = 0,
                const std::string& file_dir = "", bool exit_after = false) {
        bool ready = false;
        pid_t pid = spawn_impl(rel, anon, file, file_dir, exit_after, ready);
        return ready ? pid : -1;
    }
    // The same for a child that is expected to die before it is ready (the
    // kernel's OOM killer): returns its pid either way.
    pid_t spawn_doomed(const std::string& rel, uint64_t anon) {
        bool ready = false;
        return spawn_impl(rel, anon, 0, "", false, ready);
    }

private:
    pid_t spawn_impl(const std::string& rel, uint64_t anon, uint64_t file,
                     const std::string& file_dir, bool exit_after, bool& ready) {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
        pid_t pid = ::fork();
        if (pid < 0) throw std::runtime_error("fork");
        if (pid == 0) {
            ::close(p[0]);
            child_main(parent_ + "/" + rel, anon, file, file_dir, exit_after, p[1]);
        }
        ::close(p[1]);
        children_.push_back({pid, rel});
        char c = 0;
        ssize_t n;
        do n = ::read(p[0], &c, 1);
        while (n < 0 && errno == EINTR);
        ::close(p[0]);
        ready = n == 1;
        if (ready && exit_after) reap(pid, nullptr);
        if (ready && file && !exit_after) settle_inactive_file(rel, file);
        return pid;
    }

    // The kernel folds per-CPU memcg statistics into memory.stat lazily (a
    // periodic flush every 2 s; reading a child's flushes that child, not its
    // parents), while usage_in_bytes is exact at once: right after the write,
    // the new cache can be charged but not yet counted as inactive_file, at the
    // container or at the pod the monitor ranks. Waits (at most 5 s) until 90 %
    // of it is, at every level from `rel` up; throws, naming the reading, when
    // the kernel never gets there.
    void settle_inactive_file(const std::string& rel, uint64_t file) const {
        auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        const std::string key = "\ntotal_inactive_file ";
        for (std::string level = rel;;) {
            const std::string stat = parent_ + "/" + level + "/memory.stat";
            uint64_t inactive = 0;
            for (;;) {
                std::string text = readFile(stat);
                size_t at = text.find(key);
                inactive = at == std::string::npos ? 0 : std::stoull(text.substr(at + key.size()));
                if (inactive >= file / 10 * 9) break;
                if (std::chrono::steady_clock::now() > end)
                    throw std::runtime_error(stat + ": total_inactive_file " +
                                             std::to_string(inactive) + " after 5 s, of " +
                                             std::to_string(file) +
                                             " bytes of clean page cache written");
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
            size_t slash = level.rfind('/');
            if (level.empty()) return;
            level = slash == std::string::npos ? "" : level.substr(0, slash);
        }
    }

public:
    // waitpid; returns true when it exited; status in *status.
    bool reap(pid_t pid, int* status,
              std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) {
        auto end = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            int st = 0;
            pid_t r = ::waitpid(pid, &st, WNOHANG);
            if (r == pid) {
                if (status) *status = st;
                children_.erase(std::remove_if(children_.begin(), children_.end(),
                                               [&](const Child& c) { return c.pid == pid; }),
                                children_.end());
                return true;
            }
            if (r < 0 || std::chrono::steady_clock::now() > end) return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
    }
    // Not exited (a zombie counts as exited).
    bool alive(pid_t pid) const {
        siginfo_t info{};
        if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0)
            return false;
        return info.si_pid == 0;
    }

    void cleanup() {
        for (auto& c : children_) ::kill(c.pid, SIGKILL);
        for (auto& c : children_) {
            int st;
            ::waitpid(c.pid, &st, 0);
        }
        children_.clear();
        remove_recursive(parent_);
    }

private:
    std::string name_, parent_;
    std::vector<Child> children_;

    [[noreturn]] static void child_main(const std::string& cg, uint64_t anon, uint64_t file,
                                        const std::string& file_dir, bool exit_after,
                                        int ready_fd) {
        std::string pid = std::to_string(::getpid());
        int fd = ::open((cg + "/cgroup.procs").c_str(), O_WRONLY);
        if (fd < 0 || ::write(fd, pid.data(), pid.size()) != static_cast<ssize_t>(pid.size()))
            _exit(3);
        ::close(fd);
        if (anon) {
            void* m =
                ::mmap(nullptr, anon, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED) _exit(4);
            std::memset(m, 0x5a, anon);  // fault every page in: charged to this cgroup
        }
        if (file) {
            std::string path = file_dir + "/cache-" + pid;
            int f = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            if (f < 0) _exit(5);
            const size_t block_size = 2u << 20;
            void* block = ::mmap(nullptr, block_size, PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (block == MAP_FAILED) _exit(5);
            std::memset(block, 'c', block_size);
            for (uint64_t done = 0; done < file; done += block_size) {
                size_t n = static_cast<size_t>(std::min<uint64_t>(block_size, file - done));
                if (::write(f, block, n) != static_cast<ssize_t>(n)) _exit(6);
            }
            // New page-cache folios reach the LRU lists through per-CPU batches
            // (with ext4's large folios, tens of MiB): charged, but on no list
            // yet. mlock() drains every CPU's batch (lru_add_drain_all); the
            // parent then waits for memory.stat to count the cache as inactive.
            if (::mlock(block, 4096) == 0) ::munlock(block, 4096);
            ::munmap(block, block_size);
            ::fdatasync(f);  // clean page cache: inactive_file, reclaimable
            ::close(f);
        }
        char c = 'r';
        if (::write(ready_fd, &c, 1) != 1) _exit(7);
        if (exit_after) _exit(0);
        for (;;) ::pause();
    }

    static void kill_procs(const std::string& dir) {
        std::string procs = readFile(dir + "/cgroup.procs");
        size_t i = 0;
        while (i < procs.size()) {
            long pid = std::strtol(procs.c_str() + i, nullptr, 10);
            if (pid > 0) ::kill(static_cast<pid_t>(pid), SIGKILL);
            size_t nl = procs.find('\n', i);
            if (nl == std::string::npos) break;
            i = nl + 1;
        }
    }

    // rmdir deepest first; cgroup files cannot be unlinked, only directories removed.
    static void remove_recursive(const std::string& dir) {
        DIR* d = ::opendir(dir.c_str());
        if (!d) return;
        std::vector<std::string> subs;
        while (dirent* e = ::readdir(d))
            if (e->d_type == DT_DIR && e->d_name[0] != '.') subs.push_back(dir + "/" + e->d_name);
        ::closedir(d);
        for (const auto& s : subs) remove_recursive(s);
        kill_procs(dir);
        for (int i = 0; i < 200 && ::rmdir(dir.c_str()) != 0 && errno == EBUSY; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }

    static void remove_stale() {
        DIR* d = ::opendir(kRealMemoryRoot);
        if (!d) return;
        std::vector<std::string> stale;
        while (dirent* e = ::readdir(d)) {
            std::string n = e->d_name;
            if (n.rfind("oomguard-test-", 0) != 0) continue;
            long pid = std::strtol(n.c_str() + 14, nullptr, 10);
            if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
                stale.push_back(std::string(kRealMemoryRoot) + "/" + n);
        }
        ::closedir(d);
        for (const auto& s : stale) remove_recursive(s);
    }
};

}  // namespace oomguard::test
