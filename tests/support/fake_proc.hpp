// A fake proc root: meminfo rewritten in place with the same length (a daemon
// that keeps the fd open and preads it must see every change; a file replaced
// by rename it would never see), and <pid>/comm.
#pragma once

#include <cstdint>
#include <string>

namespace oomguard::test {

// meminfo()'s line order: the kernel's, its lines reordered, or the kernel's
// without the MemAvailable line (a kernel before 3.14, or a broken read).
enum class MeminfoLayout { Kernel, Reordered, NoMemAvailable };

class FakeProc {
public:
    // `dir` is the proc root itself (what --proc-root names). MemAvailable
    // starts at half of `total`.
    explicit FakeProc(std::string dir, uint64_t total_bytes = 8ull << 30);
    ~FakeProc();
    FakeProc(const FakeProc&) = delete;
    FakeProc& operator=(const FakeProc&) = delete;
    const std::string& dir() const { return dir_; }
    uint64_t total() const { return total_; }

    // Fixed-width numbers: the same length whatever the values, for one
    // layout (NoMemAvailable is a line shorter).
    // Neither allocates (the hot-path tests call them while counting
    // allocations). MemFree is MemAvailable's value.
    void set_available(uint64_t bytes);
    void meminfo(uint64_t total_bytes, uint64_t available_bytes,
                 MeminfoLayout layout = MeminfoLayout::Kernel);
    // Any text (e.g. a broken or real kernel's meminfo), padded with newlines
    // to kTextSize so the daemon's pread never sees a torn or shorter file.
    static constexpr size_t kTextSize = 2048;
    void write_text(const std::string& text);
    void comm(int pid, const std::string& name) const;

private:
    std::string dir_;
    uint64_t total_;
    int fd_ = -1;  // meminfo, kept open: rewrites are pwrites
    void put(const char* data, size_t size);
};

}  // namespace oomguard::test
