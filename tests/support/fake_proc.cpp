#include "support/fake_proc.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>

#include "support/files.hpp"

namespace oomguard::test {

FakeProc::FakeProc(std::string dir, uint64_t total_bytes)
    : dir_(std::move(dir)), total_(total_bytes) {
    make_dir(dir_);
    fd_ = ::open((dir_ + "/meminfo").c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error("open " + dir_ + "/meminfo");
    meminfo(total_bytes, total_bytes / 2);
}

FakeProc::~FakeProc() {
    if (fd_ >= 0) ::close(fd_);
}

void FakeProc::put(const char* data, size_t size) {
    // In place: pwrite first, then cut what a longer earlier text left behind
    // (a no-op when the length is the same, as between set_available/meminfo
    // calls of one layout; between the two a reader may see the old tail).
    if (::pwrite(fd_, data, size, 0) != static_cast<ssize_t>(size) ||
        ::ftruncate(fd_, static_cast<off_t>(size)) != 0)
        throw std::runtime_error("rewrite " + dir_ + "/meminfo");
}

void FakeProc::meminfo(uint64_t total_bytes, uint64_t available_bytes, MeminfoLayout layout) {
    total_ = total_bytes;
    const auto total_kb = static_cast<unsigned long long>(total_bytes / 1024);
    const auto avail_kb = static_cast<unsigned long long>(available_bytes / 1024);
    static constexpr const char* kRest =
        "Buffers:                     0 kB\n"
        "Cached:                      0 kB\n"
        "SwapTotal:                   0 kB\n"
        "SwapFree:                    0 kB\n";
    char total[48], free[48], avail[48];
    std::snprintf(total, sizeof total, "MemTotal:       %14llu kB\n", total_kb);
    std::snprintf(free, sizeof free, "MemFree:        %14llu kB\n", avail_kb);
    std::snprintf(avail, sizeof avail, "MemAvailable:   %14llu kB\n", avail_kb);
    if (layout == MeminfoLayout::NoMemAvailable) avail[0] = '\0';
    char buf[512];
    int n = layout == MeminfoLayout::Reordered
                ? std::snprintf(buf, sizeof buf, "%s%s%s%s", kRest, avail, free, total)
                : std::snprintf(buf, sizeof buf, "%s%s%s%s", total, free, avail, kRest);
    put(buf, static_cast<size_t>(n));
}

void FakeProc::set_available(uint64_t bytes) { meminfo(total_, bytes); }

void FakeProc::write_text(const std::string& text) {
    std::string padded = text;
    padded.resize(kTextSize, '\n');
    put(padded.data(), padded.size());
}

void FakeProc::comm(int pid, const std::string& name) const {
    write_file(dir_ + "/" + std::to_string(pid) + "/comm", name + "\n");
}

}  // namespace oomguard::test
